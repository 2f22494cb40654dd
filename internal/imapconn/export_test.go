package imapconn

import (
	"context"
	"net"
)

// WithDial returns o with its TCP connections made by dial (tests only:
// it lets a test name a host that is not loopback and still connect to a
// loopback listener).
func WithDial(o Options, dial func(ctx context.Context, network, address string) (net.Conn, error)) Options {
	o.dial = dial
	return o
}
