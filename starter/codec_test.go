package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/codec"
)

func writeTestConfig(t *testing.T, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mailshift.yaml")
	y := "endpoints:\n  source:\n    url: imap://127.0.0.1:143\n    passwords: env:PW\n" + extra
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const testEncryption = "payload_encryption:\n  active_key: k1\n  keys:\n    - {id: k1, key: env:MAILSHIFT_TEST_STARTER_K1}\n"

func TestClientCodecFromConfig(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir()) // no demo or serve session
	t.Setenv("MAILSHIFT_CONFIG", "")
	t.Setenv("MAILSHIFT_TEST_STARTER_K1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	enc := writeTestConfig(t, testEncryption)

	opts := client.Options{HostPort: "127.0.0.1:1"}
	if err := withCodec(&opts, enc); err != nil {
		t.Fatal(err)
	}
	if opts.DataConverter == nil || opts.FailureConverter == nil {
		t.Fatal("--config with payload_encryption: the client does not encrypt")
	}
	// Found through MAILSHIFT_CONFIG too.
	t.Setenv("MAILSHIFT_CONFIG", enc)
	c, err := clientCodec("", "127.0.0.1:1")
	if err != nil || !c.Encrypts() {
		t.Fatalf("MAILSHIFT_CONFIG: %v %v", c, err)
	}
	p, _ := c.Encode([]*commonpb.Payload{{Data: []byte(`"x"`)}})

	// Without keys the client is keyless, and says what is missing.
	t.Setenv("MAILSHIFT_CONFIG", "")
	none, err := clientCodec("", "127.0.0.1:1")
	if err != nil || none.Encrypts() {
		t.Fatalf("no configuration: %v %v", none, err)
	}
	if _, err := none.Decode(p); !errors.Is(err, codec.ErrUnknownKey) || !strings.Contains(err.Error(), "MAILSHIFT_CONFIG") {
		t.Errorf("keyless decode: %v", err)
	}
	// A key that does not resolve stops the command, naming the key.
	t.Setenv("MAILSHIFT_TEST_STARTER_K1", "c2hvcnQ=")
	if _, err := clientCodec(enc, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "keys[k1]") {
		t.Errorf("short key: %v", err)
	}
}

func TestCodecServerNeedsKeys(t *testing.T) {
	t.Setenv("MAILSHIFT_CONFIG", "")
	ctx := context.Background()
	if err := runCodecServer(ctx, nil); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("no config: %v", err)
	}
	if err := runCodecServer(ctx, []string{"--config", writeTestConfig(t, "")}); err == nil || !strings.Contains(err.Error(), "no payload_encryption") {
		t.Errorf("no payload_encryption: %v", err)
	}
	t.Setenv("MAILSHIFT_TEST_STARTER_K1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("t0ken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runCodecServer(ctx, []string{"--config", writeTestConfig(t, testEncryption), "--token-file", tok})
	if err == nil || !strings.Contains(err.Error(), "--token-file") || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("token file others can read: %v", err)
	}
}

func TestWarnMissingKeys(t *testing.T) {
	var none codec.Codec
	_, err := none.Decode([]*commonpb.Payload{{Metadata: map[string][]byte{codec.MetadataEncoding: []byte(codec.Encoding), codec.MetadataKeyID: []byte("k1")}}})
	if !strings.Contains("workflow completed (org/RXH): "+err.Error(), codec.ErrUnknownKey.Error()) {
		t.Fatalf("the keyless error does not carry ErrUnknownKey's text: %v", err)
	}
}
