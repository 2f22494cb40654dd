// Package faultproxy is a loopback TCP proxy that tests put between the
// worker and an IMAP server to make the network misbehave on demand: slow
// it to a given rate, stall it, or cut every connection. It is for tests
// and the fault suite only.
package faultproxy

import (
	"net"
	"sync"
	"time"
)

// Proxy forwards every connection accepted on Addr to its upstream.
type Proxy struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	rate    int // bytes per second per direction of each connection; 0: unlimited
	stalled bool
	resume  chan struct{} // closed when a stall ends
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
	// Accepted counts the connections accepted so far.
	accepted int
	// sentUp counts the bytes forwarded from clients to the upstream.
	sentUp int64
}

// Start listens on a free loopback port and forwards to upstream
// (host:port).
func Start(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}, resume: make(chan struct{})}
	close(p.resume)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetRate limits every connection to n bytes a second in each direction
// (0: no limit). It applies at once to open connections too.
func (p *Proxy) SetRate(n int) {
	p.mu.Lock()
	p.rate = n
	p.mu.Unlock()
}

// Stall stops (true) or restarts (false) the flow of bytes on every
// connection without closing any: a server that stopped answering.
func (p *Proxy) Stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.stalled {
		return
	}
	p.stalled = on
	if on {
		p.resume = make(chan struct{})
	} else {
		close(p.resume)
	}
}

// Cut closes every open connection (new ones are still accepted): a
// network drop or a server restart, as the client sees it.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		c.Close()
	}
	return n
}

// Accepted is how many connections the proxy has accepted.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// SentUpstream is how many bytes the proxy has forwarded from its clients
// to the upstream: a test sees from it that an upload is under way.
func (p *Proxy) SentUpstream() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sentUp
}

// Close stops listening, cuts every connection and waits for the copiers.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			down.Close()
			up.Close()
			return
		}
		p.accepted++
		p.conns[down], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, down, true)
		go p.pipe(down, up, false)
	}
}

// pipe copies src to dst in chunks, honouring the rate and stalls, and
// closes both ends when either side ends.
func (p *Proxy) pipe(dst, src net.Conn, toUpstream bool) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, 4096)
	start, sent := time.Now(), 0
	lastRate := -1
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			rate, resume := p.rate, p.resume
			p.mu.Unlock()
			<-resume
			if rate != lastRate { // a new rate counts from now
				start, sent, lastRate = time.Now(), 0, rate
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			sent += n
			if toUpstream {
				p.mu.Lock()
				p.sentUp += int64(n)
				p.mu.Unlock()
			}
			if rate > 0 {
				// Hold the connection back until the bytes sent fit the rate.
				due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
		}
		if err != nil { // EOF or a cut: either way the pair is done
			return
		}
	}
}
