package main

import (
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/mailshift/mailshift/internal/embedded"
)

// lookupSession finds the `starter demo` or `starter serve` recorded for
// hostPort or one of its loopback aliases, so commands that need the
// worker's configuration (its staging store) work beside them with none of
// their own. It returns nil when there is none.
func lookupSession(hostPort string) (*embedded.Session, error) {
	for _, addr := range loopbackAliases(hostPort) {
		s, ok, err := embedded.Lookup(addr)
		if err != nil {
			return nil, fmt.Errorf("reading the record of the starter demo or serve at %s: %w", addr, err)
		}
		if ok {
			return &s, nil
		}
	}
	return nil, nil
}

// defaultHostPort is where the starter dials when --address is empty.
func defaultHostPort(address string) string {
	if address != "" {
		return address
	}
	if opts, err := envconfig.LoadDefaultClientOptions(); err == nil && opts.HostPort != "" {
		return opts.HostPort
	}
	return client.DefaultHostPort
}
