package workerapp

import (
	"context"
	"fmt"
	"time"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/staging"
)

// StagingCheckTimeout bounds the container check made when the worker starts.
const StagingCheckTimeout = time.Minute

// NewStaging builds the configured staging store. Secrets (connection string,
// SAS URL) are resolved here, in the worker process at start, and never leave
// it. An azblob store's container is checked (or created when allowed) now,
// so bad credentials stop the worker with an error naming account and
// container instead of failing every activity later.
func NewStaging(ctx context.Context, sc config.Staging) (staging.Store, error) {
	switch sc.Kind {
	case "", "local":
		return staging.NewLocal(sc.Path)
	case "azblob":
		o := staging.AzureOptions{
			AccountURL:      sc.AccountURL,
			Container:       sc.Container,
			CreateContainer: sc.CreateContainer,
			BlockSize:       int(sc.BlockSize),
			Concurrency:     sc.Concurrency,
		}
		if sc.IndexTags != nil && !*sc.IndexTags {
			o.TagKeys = []string{}
		}
		var err error
		if sc.ConnectionString != "" {
			if o.ConnectionString, err = sc.ConnectionString.ResolveString(); err != nil {
				return nil, fmt.Errorf("staging.connection_string: %w", err)
			}
		}
		if sc.SASURL != "" {
			if o.ContainerSASURL, err = sc.SASURL.ResolveString(); err != nil {
				return nil, fmt.Errorf("staging.sas_url: %w", err)
			}
		}
		st, err := staging.NewAzure(o)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, StagingCheckTimeout)
		defer cancel()
		if err := st.EnsureContainer(ctx); err != nil {
			return nil, err
		}
		return st, nil
	default:
		return nil, fmt.Errorf("staging.kind %q: not one of local, azblob", sc.Kind)
	}
}
