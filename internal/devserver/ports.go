package devserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// portRequest describes one TCP port the server is going to bind.
type portRequest struct {
	what string // human readable purpose, e.g. "Temporal frontend"
	host string // IP to bind on
	port int    // 0 = pick a free port
}

// reservedPorts holds the ports handed to servers of this process that have
// not been stopped yet. Free ports are chosen by binding port 0 and closing the
// listener again, so without this set two servers started concurrently in one
// process could, in rare cases, be handed the same port in the window between
// the check and the server's own bind - and the Temporal server answers a busy
// port with log.Fatal, killing the whole process.
var reservedPorts = struct {
	sync.Mutex
	m map[int]struct{}
}{m: map[int]struct{}{}}

// reservePorts checks every requested address by binding it, picks free ports
// for the requests with port 0 and returns the resulting ports in request
// order. All listeners are held open at the same time, so the picked ports are
// distinct, and closed before returning. The ports stay reserved within this
// process until releasePorts is called.
func reservePorts(reqs []portRequest) ([]int, error) {
	reservedPorts.Lock()
	defer reservedPorts.Unlock()

	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()

	// Fixed ports first, so that a port picked for a "0" request can never be
	// one of the fixed ports requested in the same call.
	order := make([]int, 0, len(reqs))
	for i, r := range reqs {
		if r.port != 0 {
			order = append(order, i)
		}
	}
	for i, r := range reqs {
		if r.port == 0 {
			order = append(order, i)
		}
	}

	ports := make([]int, len(reqs))
	for _, i := range order {
		r := reqs[i]
		addr := net.JoinHostPort(r.host, strconv.Itoa(r.port))
		if r.port != 0 {
			if _, taken := reservedPorts.m[r.port]; taken {
				return nil, inUseError(addr, r.what)
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				if errors.Is(err, syscall.EADDRINUSE) {
					return nil, inUseError(addr, r.what)
				}
				return nil, fmt.Errorf("devserver: cannot listen on %s (%s): %w", addr, r.what, err)
			}
			listeners = append(listeners, l)
			ports[i] = r.port
			continue
		}
		// Pick a free port that no other server of this process holds.
		var picked int
		for attempt := 0; attempt < 50 && picked == 0; attempt++ {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, fmt.Errorf("devserver: cannot pick a free port on %s for %s: %w", r.host, r.what, err)
			}
			listeners = append(listeners, l)
			p := l.Addr().(*net.TCPAddr).Port
			if _, taken := reservedPorts.m[p]; !taken {
				picked = p
			}
		}
		if picked == 0 {
			return nil, fmt.Errorf("devserver: cannot pick a free port on %s for %s", r.host, r.what)
		}
		ports[i] = picked
	}
	for _, p := range ports {
		reservedPorts.m[p] = struct{}{}
	}
	return ports, nil
}

// releasePorts makes ports returned by reservePorts available again.
func releasePorts(ports []int) {
	reservedPorts.Lock()
	defer reservedPorts.Unlock()
	for _, p := range ports {
		delete(reservedPorts.m, p)
	}
}

func inUseError(addr, what string) error {
	return fmt.Errorf("devserver: %s (%s) is already in use — is another Temporal server running? choose another address", addr, what)
}

// splitAddr parses "host:port" for a listening address. An empty or
// "localhost" host becomes 127.0.0.1; otherwise the host must be an IP
// literal, because the Temporal server binds on an IP.
func splitAddr(addr, what string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("devserver: invalid %s address %q: %w", what, addr, err)
	}
	if h == "" || h == "localhost" {
		h = "127.0.0.1"
	}
	if net.ParseIP(h) == nil {
		return "", 0, fmt.Errorf("devserver: invalid %s address %q: host must be an IP address or localhost", what, addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("devserver: invalid %s address %q: bad port", what, addr)
	}
	return h, n, nil
}

// dialHost returns the host clients should dial to reach a listener bound on
// host: the loopback address for the unspecified address.
func dialHost(host string) string {
	ip := net.ParseIP(host)
	if ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	return host
}
