package codec

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
)

// HandlerOptions guard the remote codec endpoint.
type HandlerOptions struct {
	// Token, when set, must arrive as "Authorization: Bearer <Token>"
	// (the temporal CLI's --codec-auth, or the Web UI's access token).
	// Without it anyone who reaches the port can decrypt: bind it to
	// loopback or put it behind an authenticating proxy.
	Token string
	// CORSOrigins may call the endpoint from a browser (the Web UI's own
	// origin, e.g. http://127.0.0.1:8233). Empty: no browser may.
	CORSOrigins []string
}

// MaxRequestBytes bounds one request's body. Temporal limits a payload to
// 2 MB and the Web UI sends the payloads of a few events at once.
const MaxRequestBytes = 64 << 20

// Handler serves Temporal's remote codec protocol for c: POST /encode and
// /decode, or /{namespace}/encode and /{namespace}/decode, with a JSON body
// {"payloads": [...]} (Payloads in protojson), answered in kind. The
// Web UI posts to <endpoint>/decode with an X-Namespace header; the
// namespace does not change the keys.
func Handler(c *Codec, o HandlerOptions) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(c)
	wantAuth := []byte(nil)
	if o.Token != "" {
		// Compared as digests so the comparison takes the same time
		// whatever the length of what was sent.
		sum := sha256.Sum256([]byte("Bearer " + o.Token))
		wantAuth = sum[:]
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && containsFold(o.CORSOrigins, origin)
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			if !allowed {
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization, Authorization-Extras")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !codecPath(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if wantAuth != nil {
			got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
			if subtle.ConstantTimeCompare(got[:], wantAuth) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mailshift codec"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
		inner.ServeHTTP(w, r)
	})
}

// codecPath accepts /encode, /decode and /{namespace}/encode|decode.
func codecPath(p string) bool {
	p = strings.TrimPrefix(p, "/")
	ns, op, found := strings.Cut(p, "/")
	if !found {
		op, ns = ns, ""
	}
	if strings.Contains(op, "/") {
		return false
	}
	return op == "encode" || op == "decode"
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSuffix(v, "/"), s) {
			return true
		}
	}
	return false
}

// Server is a running codec endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve listens on addr (port 0 picks one) and serves Handler(c, o) until Close.
func Serve(addr string, c *Codec, o HandlerOptions) (*Server, error) {
	if c == nil {
		return nil, errors.New("codec server: no codec")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("codec server: listen on %s: %w", addr, err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(c, o),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the address listened on, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the endpoint's base URL, for the Web UI and the temporal CLI.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops the server, letting requests in flight finish for a few seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}
