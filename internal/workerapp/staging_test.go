package workerapp

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/azuritetest"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/staging"
)

func TestNewStagingAzblob(t *testing.T) {
	srv := azuritetest.Require(t)
	ctx := context.Background()
	t.Setenv("MAILSHIFT_TEST_AZ_CONN", srv.ConnectionString())
	sc := config.Staging{Kind: "azblob", Container: "mailshift-staging", ConnectionString: "env:MAILSHIFT_TEST_AZ_CONN"}

	// Without create_container a missing container stops the worker.
	if _, err := NewStaging(ctx, sc); err == nil || !strings.Contains(err.Error(), "mailshift-staging") {
		t.Fatalf("missing container: %v", err)
	}
	sc.CreateContainer = true
	st, err := NewStaging(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "org/box/ledger.json", strings.NewReader("{}"), map[string]string{"kind": "ledger"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Describe(), "azblob:") || strings.Contains(st.Describe(), azuritetest.AccountKey) {
		t.Fatalf("describe = %q", st.Describe())
	}

	// A wrong key is an authentication error, at start.
	t.Setenv("MAILSHIFT_TEST_AZ_CONN", strings.Replace(srv.ConnectionString(), azuritetest.AccountKey, "d3Jvbmc=", 1))
	if _, err := NewStaging(ctx, sc); !errors.Is(err, staging.ErrAuth) {
		t.Fatalf("wrong key: %v, want staging.ErrAuth", err)
	}
	// An unresolvable secret names the reference, not a value.
	sc.ConnectionString = "env:MAILSHIFT_TEST_UNSET_VAR"
	if _, err := NewStaging(ctx, sc); err == nil || !strings.Contains(err.Error(), "MAILSHIFT_TEST_UNSET_VAR") {
		t.Fatalf("unset secret: %v", err)
	}
}
