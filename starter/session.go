package main

import (
	"net"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/mailshift/mailshift/internal/embedded"
)

// embeddedSession finds the `starter demo` or `starter serve` this command
// would talk to, so that commands needing the worker's configuration (its
// staging store) work against them with none of their own. address is the
// --address flag ("" for the client settings' default).
func embeddedSession(address string) (embedded.Session, bool) {
	if address == "" {
		if opts, err := envconfig.LoadDefaultClientOptions(); err == nil {
			address = opts.HostPort
		}
	}
	if address == "" {
		address = client.DefaultHostPort
	}
	for _, a := range sameHost(address) {
		if s, ok, err := embedded.Lookup(a); err == nil && ok {
			return s, true
		}
	}
	return embedded.Session{}, false
}

// sameHost lists address and its loopback spellings: the SDK's default is
// localhost:7233 while the embedded servers listen on 127.0.0.1:7233.
func sameHost(address string) []string {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return []string{address}
	}
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("localhost", port), net.JoinHostPort("::1", port)}
	}
	return []string{address}
}
