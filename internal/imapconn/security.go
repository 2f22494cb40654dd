package imapconn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// Security is how a connection is protected.
type Security string

const (
	// SecurityTLS is implicit TLS (imaps://): TLS from the first byte.
	SecurityTLS Security = "tls"
	// SecuritySTARTTLS is an imap:// connection upgraded with STARTTLS
	// before anything else is sent.
	SecuritySTARTTLS Security = "starttls"
	// SecurityPlain is an imap:// connection without TLS: only to a
	// loopback host, or where the endpoint sets allow_plaintext.
	SecurityPlain Security = "plaintext"
)

// ErrPlaintextRefused is why an imap:// connection to a host that is not
// loopback is refused when the server does not offer STARTTLS and the
// endpoint does not set allow_plaintext. No credential has been sent.
var ErrPlaintextRefused = errors.New("the server does not offer STARTTLS and the host is not loopback: " +
	"refusing to send credentials in clear text (use imaps://, enable STARTTLS on the server, " +
	"or set allow_plaintext: true on the endpoint for a trusted network)")

// IsLoopback reports whether host names this machine: "localhost" or an
// address in 127.0.0.0/8 or ::1. Names are not resolved: a name that
// resolves to a loopback address is not loopback here.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ChooseSecurity decides how a connection to addr is protected, given
// whether the server offered STARTTLS (in its greeting or its answer to
// CAPABILITY, before any login): imaps:// is TLS; imap:// uses STARTTLS
// whenever it is offered; without it, plaintext is allowed only to a
// loopback host or with allowPlaintext, and refused otherwise with an
// *Error of kind KindConfig wrapping ErrPlaintextRefused.
func ChooseSecurity(addr Address, starttlsOffered, allowPlaintext bool) (Security, error) {
	switch {
	case addr.TLS:
		return SecurityTLS, nil
	case starttlsOffered:
		return SecuritySTARTTLS, nil
	case IsLoopback(addr.Host) || allowPlaintext:
		return SecurityPlain, nil
	}
	return "", &Error{Kind: KindConfig, Op: "connect " + addr.String(), Permanent: true, Err: ErrPlaintextRefused}
}

// LoadCAFile reads a PEM bundle of CA certificates (an endpoint's
// tls_ca_file) and returns the system's roots plus those certificates, so
// that a private CA is trusted in addition to the public ones. The system
// roots are what crypto/x509 finds (SSL_CERT_FILE and SSL_CERT_DIR
// included); a file without any certificate, or with anything else than
// certificates in it (a private key, say), is an error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) > 0 && n == 0 {
				return nil, fmt.Errorf("%s: not a PEM file", path)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: holds a %s block; want CA certificates only", path, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// tlsConfig is the client TLS configuration for addr.
func (o Options) tlsConfig(addr Address) *tls.Config {
	name := o.TLSServerName
	if name == "" {
		name = addr.Host
	}
	return &tls.Config{
		ServerName:         name,
		RootCAs:            o.RootCAs,
		InsecureSkipVerify: o.TLSInsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
	}
}

// tlsError classifies a failed handshake: a certificate that does not
// verify is the configuration's problem (a retry cannot help), anything
// else is the network's.
func tlsError(op string, addr Address, err error) error {
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var cie x509.CertificateInvalidError
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie) {
		return &Error{Kind: KindConfig, Op: op + " " + addr.String(), Permanent: true,
			Err: fmt.Errorf("server certificate not trusted: %w (for a private CA set the endpoint's tls_ca_file; for a certificate issued to another name, tls_server_name)", err)}
	}
	return &Error{Kind: KindUnavailable, Op: op + " " + addr.String(), Err: err}
}

// maxPreTLSLine bounds a line read before TLS is up.
const maxPreTLSLine = 16 << 10

// connect dials addr and returns a connection protected as ChooseSecurity
// decides, before anything that could carry a credential is sent. Reading
// from the returned connection yields a server greeting first, as from a
// fresh connection: the server's own (imaps://, plaintext) or, after
// STARTTLS, the server's greeting text without its pre-TLS response code,
// so that a client asks for the capabilities again over TLS (RFC 3501
// 6.2.1). The TLS state is nil for plaintext.
//
// One deadline, the dial timeout from now, bounds every step here and
// stays on the connection for the caller's login: call ready on the
// connection once logged in.
func connect(ctx context.Context, addr Address, opts Options) (*timedConn, Security, *tls.ConnectionState, error) {
	timeout := opts.dialTimeout()
	deadline := time.Now().Add(timeout)
	dial := opts.dial
	if dial == nil {
		dial = (&net.Dialer{Deadline: deadline}).DialContext
	}
	raw, err := dial(ctx, "tcp", addr.HostPort())
	if err != nil {
		if ctx.Err() == nil && isTimeout(err) {
			return nil, "", nil, notWithin(addr, "TCP connection", timeout)
		}
		return nil, "", nil, &Error{Kind: KindUnavailable, Op: "dial " + addr.String(), Err: err}
	}
	raw.SetDeadline(deadline)
	if addr.TLS {
		tc := tls.Client(raw, opts.tlsConfig(addr))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			if ctx.Err() != nil {
				return nil, "", nil, ctx.Err()
			}
			if isTimeout(err) {
				return nil, "", nil, notWithin(addr, "TLS handshake", timeout)
			}
			return nil, "", nil, tlsError("tls", addr, err)
		}
		st := tc.ConnectionState()
		return newTimedConn(tc, nil, addr), SecurityTLS, &st, nil
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	fail := func(err error) (*timedConn, Security, *tls.ConnectionState, error) {
		raw.Close()
		if ctx.Err() != nil {
			return nil, "", nil, ctx.Err()
		}
		return nil, "", nil, err
	}
	unavailable := func(op, what string, err error) (*timedConn, Security, *tls.ConnectionState, error) {
		if isTimeout(err) {
			return fail(notWithin(addr, what, timeout))
		}
		return fail(&Error{Kind: KindUnavailable, Op: op + " " + addr.String(), Err: err})
	}
	// The reader stays under the client for a plaintext session: a large
	// buffer turns a body's stream into a few large reads, not one read
	// system call per 4 KiB (half a million per 2 GB copied).
	br := bufio.NewReaderSize(raw, readBuffer)
	greeting, err := readLine(br)
	if err != nil {
		return unavailable("greeting", "greeting", err)
	}
	status, code, text := parseGreeting(greeting)
	if status != "OK" && status != "PREAUTH" {
		return unavailable("greeting", "greeting", errors.New(strings.TrimRight(greeting, "\r\n")))
	}
	// STARTTLS is possible only before authentication (not after PREAUTH).
	offered := false
	if status == "OK" {
		caps, known := capsOf(code)
		if !known {
			if _, err := raw.Write([]byte("M0 CAPABILITY\r\n")); err != nil {
				return unavailable("capability", "answer to CAPABILITY", err)
			}
			if caps, err = preTLSCommand(br, "M0"); err != nil {
				return unavailable("capability", "answer to CAPABILITY", err)
			}
		}
		offered = caps["STARTTLS"]
	}
	sec, err := ChooseSecurity(addr, offered, opts.AllowPlaintext)
	if err != nil {
		return fail(err)
	}
	if sec == SecurityPlain {
		return newTimedConn(raw, io.MultiReader(strings.NewReader(greeting), br), addr), SecurityPlain, nil, nil
	}
	if _, err := raw.Write([]byte("M1 STARTTLS\r\n")); err != nil {
		return unavailable("starttls", "answer to STARTTLS", err)
	}
	if _, err := preTLSCommand(br, "M1"); err != nil {
		return unavailable("starttls", "answer to STARTTLS", err)
	}
	// Anything the server sent after its OK and before the handshake would
	// be read as if it came over TLS (the STARTTLS command injection flaw).
	if br.Buffered() > 0 {
		return unavailable("starttls", "", errors.New("the server sent data after its STARTTLS answer, before TLS"))
	}
	tc := tls.Client(raw, opts.tlsConfig(addr))
	if err := tc.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		if isTimeout(err) {
			return fail(notWithin(addr, "TLS handshake", timeout))
		}
		return fail(tlsError("starttls", addr, err))
	}
	st := tc.ConnectionState()
	if text == "" {
		text = "TLS established"
	}
	return newTimedConn(tc, io.MultiReader(strings.NewReader("* OK "+text+"\r\n"), tc), addr), SecuritySTARTTLS, &st, nil
}

// notWithin is the transient fault of a pre-login step that did not end
// before the dial timeout: "imap://host:143: no greeting within 30s".
func notWithin(addr Address, what string, timeout time.Duration) *Error {
	return &Error{Kind: KindUnavailable, Op: addr.String(), Err: fmt.Errorf("no %s within %s", what, timeout)}
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// readLine reads one CRLF-terminated line, at most maxPreTLSLine long.
func readLine(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		sb.Write(chunk)
		if sb.Len() > maxPreTLSLine {
			return "", errors.New("line too long")
		}
		switch {
		case err == nil:
			return sb.String(), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", err
		}
	}
}

// parseGreeting splits "* OK [CODE args] text" into its status, its
// response code (with arguments, without brackets) and its text.
func parseGreeting(line string) (status, code, text string) {
	line = strings.TrimRight(line, "\r\n")
	rest, ok := strings.CutPrefix(line, "* ")
	if !ok {
		return "", "", line
	}
	status, rest, _ = strings.Cut(rest, " ")
	status = strings.ToUpper(status)
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			code, rest = rest[1:end], strings.TrimSpace(rest[end+1:])
		}
	}
	return status, code, rest
}

// capsOf returns the capabilities of a CAPABILITY response code or line
// ("CAPABILITY IMAP4rev1 STARTTLS ..."), upper-cased; known is false if
// it is not one.
func capsOf(s string) (caps map[string]bool, known bool) {
	f := strings.Fields(s)
	if len(f) == 0 || !strings.EqualFold(f[0], "CAPABILITY") {
		return nil, false
	}
	caps = map[string]bool{}
	for _, c := range f[1:] {
		caps[strings.ToUpper(c)] = true
	}
	return caps, true
}

// preTLSCommand reads the answer to a command sent with tag before TLS,
// collecting the capabilities of any untagged CAPABILITY response; an
// answer other than OK is an error.
func preTLSCommand(br *bufio.Reader, tag string) (map[string]bool, error) {
	caps := map[string]bool{}
	for {
		l, err := readLine(br)
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if rest, ok := strings.CutPrefix(l, "* "); ok {
			if c, known := capsOf(rest); known {
				for k := range c {
					caps[k] = true
				}
			}
			continue
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			status, _, _ := strings.Cut(rest, " ")
			if !strings.EqualFold(status, "OK") {
				return nil, fmt.Errorf("server answered %q", l)
			}
			return caps, nil
		}
	}
}
