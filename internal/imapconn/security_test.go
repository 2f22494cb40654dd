package imapconn_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/dovecottest"
	"github.com/mailshift/mailshift/internal/imapconn"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": true, "127.255.255.254": true, "::1": true, "localhost": true, "LocalHost": true,
		"::ffff:127.0.0.1": true,
		"10.255.255.1":     false, "192.168.1.10": false, "0.0.0.0": false, "::": false, "mail.example.org": false,
		"localhost.example.org": false, "127.0.0.1.nip.io": false, "": false,
	} {
		require.Equal(t, want, imapconn.IsLoopback(host), host)
	}
}

// TestChooseSecurity is the policy as pure logic; nothing is dialled.
func TestChooseSecurity(t *testing.T) {
	for _, tc := range []struct {
		url            string
		offered, allow bool
		want           imapconn.Security
	}{
		{"imaps://mail.example.org", false, false, imapconn.SecurityTLS},
		{"imaps://10.255.255.1", true, false, imapconn.SecurityTLS},
		{"imap://mail.example.org", true, false, imapconn.SecuritySTARTTLS},
		{"imap://10.255.255.1", true, true, imapconn.SecuritySTARTTLS}, // offered: used even where plaintext is allowed
		{"imap://127.0.0.1:1143", true, false, imapconn.SecuritySTARTTLS},
		{"imap://127.0.0.1:1143", false, false, imapconn.SecurityPlain},
		{"imap://[::1]:1143", false, false, imapconn.SecurityPlain},
		{"imap://localhost", false, false, imapconn.SecurityPlain},
		// (e) allow_plaintext lets a non-loopback server without STARTTLS through.
		{"imap://10.255.255.1", false, true, imapconn.SecurityPlain},
		{"imap://mail.example.org", false, true, imapconn.SecurityPlain},
		// (d) without it, refused.
		{"imap://10.255.255.1", false, false, ""},
		{"imap://mail.example.org:1143", false, false, ""},
		{"imap://localhost.example.org", false, false, ""},
	} {
		a, err := imapconn.ParseAddress(tc.url)
		require.NoError(t, err)
		got, err := imapconn.ChooseSecurity(a, tc.offered, tc.allow)
		if tc.want != "" {
			require.NoError(t, err, "%+v", tc)
			require.Equal(t, tc.want, got, "%+v", tc)
			continue
		}
		require.ErrorIs(t, err, imapconn.ErrPlaintextRefused, "%+v", tc)
		var ie *imapconn.Error
		require.ErrorAs(t, err, &ie)
		require.Equal(t, imapconn.KindConfig, ie.Kind)
		require.True(t, ie.Permanent, "a retry cannot help")
		require.Contains(t, err.Error(), a.String(), "names the endpoint")
		require.Contains(t, err.Error(), "allow_plaintext")
	}
}

// recorder is a loopback IMAP server that never offers STARTTLS (unless
// told to) and keeps every byte it receives.
type recorder struct {
	ln       net.Listener
	greeting string
	starttls string // answer to STARTTLS; "" means BAD
	mu       sync.Mutex
	got      strings.Builder
}

func startRecorder(t *testing.T, greeting string) *recorder {
	t.Helper()
	r := &recorder{greeting: greeting}
	r.ln = serveLoopback(t, func(conn net.Conn) {
		conn.SetDeadline(time.Now().Add(guard))
		r.serve(conn)
	})
	return r
}

func (r *recorder) serve(conn net.Conn) {
	conn.Write([]byte(r.greeting + "\r\n"))
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		r.mu.Lock()
		r.got.WriteString(line)
		r.mu.Unlock()
		if err != nil {
			return
		}
		tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		cmd, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			caps := "IMAP4rev1 AUTH=PLAIN"
			if r.starttls != "" {
				caps += " STARTTLS"
			}
			conn.Write([]byte("* CAPABILITY " + caps + "\r\n" + tag + " OK done\r\n"))
		case "STARTTLS":
			if r.starttls == "" {
				conn.Write([]byte(tag + " BAD no\r\n"))
				continue
			}
			conn.Write([]byte(strings.ReplaceAll(r.starttls, "TAG", tag)))
			return
		case "LOGIN", "AUTHENTICATE":
			conn.Write([]byte(tag + " NO [AUTHENTICATIONFAILED] recorded\r\n"))
		default:
			conn.Write([]byte(tag + " BAD unknown\r\n"))
		}
	}
}

func (r *recorder) received() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

// redirect dials the recorder whatever address is asked for, after checking
// it is the one expected: the test names a host that is not loopback, and
// nothing leaves the machine.
func redirect(t *testing.T, r *recorder, want string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if address != want {
			t.Errorf("dialled %s, want %s", address, want)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, r.ln.Addr().String())
	}
}

// (d) plaintext to a host that is not loopback is refused before any
// credential is sent; (e) with allow_plaintext the login goes ahead.
func TestPlaintextRefusedBeforeCredentials(t *testing.T) {
	const secret = "s3cret-Passw0rd"
	for name, greeting := range map[string]string{
		"caps in greeting":     "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] recorder ready",
		"caps asked":           "* OK recorder ready",
		"PREAUTH, no STARTTLS": "* PREAUTH recorder ready",
	} {
		for _, appender := range []bool{false, true} {
			for _, login := range []imapconn.Login{{Username: "ann", Password: secret}, {Username: "admin", Password: secret, AuthzID: "ann"}} {
				t.Run(name+"/appender="+strconv.FormatBool(appender)+"/authzid="+login.AuthzID, func(t *testing.T) {
					r := startRecorder(t, greeting)
					a, err := imapconn.ParseAddress("imap://10.255.255.1:143")
					require.NoError(t, err)
					dial := func(o imapconn.Options) error {
						o = imapconn.WithDial(o, redirect(t, r, "10.255.255.1:143"))
						if appender {
							app, err := imapconn.DialAppender(ctxT(t), a, login, o, 4)
							if app != nil {
								app.Close()
							}
							return err
						}
						c, err := imapconn.Dial(ctxT(t), a, login, o)
						if c != nil {
							c.Close()
						}
						return err
					}
					err = dial(imapconn.Options{})
					require.ErrorIs(t, err, imapconn.ErrPlaintextRefused)
					var ie *imapconn.Error
					require.ErrorAs(t, err, &ie)
					require.Equal(t, imapconn.KindConfig, ie.Kind)
					require.True(t, ie.Permanent)
					require.Equal(t, "connect imap://10.255.255.1:143: "+imapconn.ErrPlaintextRefused.Error(), err.Error())
					got := r.received()
					require.NotContains(t, got, secret)
					require.NotContains(t, strings.ToUpper(got), "LOGIN")
					require.NotContains(t, strings.ToUpper(got), "AUTHENTICATE")
					if strings.Contains(greeting, "[CAPABILITY") || strings.Contains(greeting, "PREAUTH") {
						require.Empty(t, got, "nothing to ask")
					}

					if strings.Contains(greeting, "PREAUTH") {
						return
					}
					// (e) allow_plaintext: the same server gets the login.
					err = dial(imapconn.Options{AllowPlaintext: true})
					require.ErrorAs(t, err, &ie)
					require.Equal(t, imapconn.KindAuth, ie.Kind, "%v", err)
					got = strings.ToUpper(r.received())
					require.True(t, strings.Contains(got, "LOGIN") || strings.Contains(got, "AUTHENTICATE"), "the login was sent: %q", got)
				})
			}
		}
	}
}

// A server that offers STARTTLS but then says BAD, or sends more after its
// OK, gets no login either.
func TestSTARTTLSMisbehaviour(t *testing.T) {
	for name, answer := range map[string]string{
		"refused":          "TAG NO not now\r\n",
		"injected":         "TAG OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1] injected\r\n",
		"closed after OK":  "TAG OK begin TLS\r\n",
		"untagged, closed": "* OK hello\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := startRecorder(t, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] recorder")
			r.starttls = answer
			a, err := imapconn.ParseAddress("imap://mail.example.org:143")
			require.NoError(t, err)
			_, err = imapconn.Dial(ctxT(t), a, imapconn.Login{Username: "ann", Password: "pw-secret"},
				imapconn.WithDial(imapconn.Options{DialTimeout: 5 * time.Second}, redirect(t, r, "mail.example.org:143")))
			var ie *imapconn.Error
			require.ErrorAs(t, err, &ie)
			require.Equal(t, imapconn.KindUnavailable, ie.Kind, "%v", err)
			require.Contains(t, err.Error(), "starttls imap://mail.example.org:143")
			if name == "injected" {
				require.Contains(t, err.Error(), "sent data after its STARTTLS answer")
			}
			require.NotContains(t, r.received(), "pw-secret")
		})
	}
}

// --- against Dovecot with TLS ----------------------------------------------

func TestTLSWithDovecot(t *testing.T) {
	// ssl = required: Dovecot refuses any login before STARTTLS (it listens
	// on 127.0.0.2, so the connection from 127.0.0.1 is not "secured" by
	// being local).
	inst := dovecottest.StartT(t, dovecottest.Options{TLSRequired: true, MailFsync: "never"})
	const user, pw = "ann@example.org", "ann-pw"
	require.NoError(t, inst.AddUser(user, pw))
	login := imapconn.Login{Username: user, Password: pw}
	pki := inst.PKI()
	trusted, err := imapconn.LoadCAFile(pki.CAFile)
	require.NoError(t, err)
	plain, err := imapconn.ParseAddress(inst.URL())
	require.NoError(t, err)
	implicit, err := imapconn.ParseAddress(inst.TLSURL())
	require.NoError(t, err)
	require.True(t, imapconn.IsLoopback(plain.Host), "the policy would allow plaintext: STARTTLS is used because it is offered")

	// The server refuses a plaintext login: what follows logs in after STARTTLS.
	pc, err := imapclient.DialInsecure(inst.Addr(), nil)
	require.NoError(t, err)
	require.True(t, pc.Caps().Has(imap.CapLoginDisabled))
	require.Error(t, pc.Login(user, pw).Wait(), "plaintext LOGIN must fail on this server")
	pc.Close()

	checkTLS := func(t *testing.T, c *imapconn.Conn, want imapconn.Security) {
		t.Helper()
		require.Equal(t, want, c.Security())
		st := c.TLSState()
		require.NotNil(t, st)
		require.True(t, st.HandshakeComplete)
		require.GreaterOrEqual(t, st.Version, uint16(tls.VersionTLS12))
		require.NotEmpty(t, st.VerifiedChains, "the certificate was verified")
		require.Equal(t, pki.CA.Subject.String(), st.VerifiedChains[0][len(st.VerifiedChains[0])-1].Subject.String())
		folders, err := c.Folders()
		require.NoError(t, err)
		require.NotEmpty(t, folders)
	}

	// (a) imap:// with STARTTLS, the CA from tls_ca_file.
	t.Run("STARTTLS", func(t *testing.T) {
		c, err := imapconn.Dial(ctxT(t), plain, login, imapconn.Options{RootCAs: trusted})
		require.NoError(t, err)
		defer c.Close()
		checkTLS(t, c, imapconn.SecuritySTARTTLS)
		// Dovecot's own account: the login came over TLS.
		loginTLS := regexp.MustCompile(`Login: user=<` + regexp.QuoteMeta(user) + `>, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.2, mpid=\d+, TLS,`)
		require.Eventually(t, func() bool { return loginTLS.MatchString(inst.Log(0)) }, guard, 20*time.Millisecond, "log:\n%s", inst.Log(2000))
	})
	t.Run("STARTTLS appender", func(t *testing.T) {
		app, err := imapconn.DialAppender(ctxT(t), plain, login, imapconn.Options{RootCAs: trusted}, 4)
		require.NoError(t, err)
		msg := "Subject: over STARTTLS\r\n\r\nhello\r\n"
		_, err = app.Append("INBOX", nil, time.Time{}, int64(len(msg)), strings.NewReader(msg))
		require.NoError(t, err)
		require.NoError(t, app.Flush())
		select {
		case res := <-app.Results():
			require.NoError(t, res.Err)
			require.True(t, res.OK)
		case <-time.After(guard):
			t.Fatal("no answer to APPEND")
		}
		app.Close()
	})
	// (b) imaps:// with the CA from tls_ca_file, and tls_server_name.
	t.Run("imaps", func(t *testing.T) {
		c, err := imapconn.Dial(ctxT(t), implicit, login, imapconn.Options{RootCAs: trusted})
		require.NoError(t, err)
		defer c.Close()
		checkTLS(t, c, imapconn.SecurityTLS)
		c2, err := imapconn.Dial(ctxT(t), implicit, login, imapconn.Options{RootCAs: trusted, TLSServerName: "localhost"})
		require.NoError(t, err)
		c2.Close()
	})
	// (c) a certificate the client cannot verify: a clear, permanent error,
	// before any credential is sent.
	other, err := dovecottest.NewPKI(filepath.Join(t.TempDir(), "other"), "other")
	require.NoError(t, err)
	wrongCA, err := imapconn.LoadCAFile(other.CAFile)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		addr imapconn.Address
		opts imapconn.Options
		want []string
	}{
		{"imaps, wrong CA", implicit, imapconn.Options{RootCAs: wrongCA}, []string{"tls " + implicit.String() + ": server certificate not trusted: ", "certificate signed by unknown authority", "tls_ca_file"}},
		{"STARTTLS, wrong CA", plain, imapconn.Options{RootCAs: wrongCA}, []string{"starttls " + plain.String() + ": server certificate not trusted: ", "certificate signed by unknown authority"}},
		{"STARTTLS, system roots", plain, imapconn.Options{}, []string{"server certificate not trusted", "certificate signed by unknown authority"}},
		{"imaps, wrong name", implicit, imapconn.Options{RootCAs: trusted, TLSServerName: "mail.example.org"}, []string{"server certificate not trusted", "mail.example.org", "tls_server_name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A user of its own: Dovecot logs the earlier subtests' logins
			// a little later than they happen, so counting one user's
			// logins raced with them.
			refused := imapconn.Login{Username: "refused-" + strings.NewReplacer(" ", "-", ",", "").Replace(tc.name), Password: pw}
			_, err := imapconn.Dial(ctxT(t), tc.addr, refused, tc.opts)
			var ie *imapconn.Error
			require.ErrorAs(t, err, &ie)
			require.Equal(t, imapconn.KindConfig, ie.Kind, "%v", err)
			require.True(t, ie.Permanent)
			for _, s := range tc.want {
				require.Contains(t, err.Error(), s)
			}
			t.Logf("%v", err)
			require.Never(t, func() bool { return strings.Contains(inst.Log(0), "user=<"+refused.Username+">") }, 300*time.Millisecond, 20*time.Millisecond, "no login was attempted")
		})
	}
	// tls_insecure_skip_verify: lab only, but it connects.
	t.Run("skip verify", func(t *testing.T) {
		c, err := imapconn.Dial(ctxT(t), implicit, login, imapconn.Options{TLSInsecureSkipVerify: true})
		require.NoError(t, err)
		require.Equal(t, imapconn.SecurityTLS, c.Security())
		c.Close()
	})
}

func TestLoadCAFile(t *testing.T) {
	dir := t.TempDir()
	pki, err := dovecottest.NewPKI(dir, "load")
	require.NoError(t, err)
	pool, err := imapconn.LoadCAFile(pki.CAFile)
	require.NoError(t, err)
	// The pool is the system roots plus the CA.
	want, err := x509.SystemCertPool()
	require.NoError(t, err)
	require.False(t, pool.Equal(want))
	want.AddCert(pki.CA)
	require.True(t, pool.Equal(want), "tls_ca_file extends the system roots")

	// A bundle of two CAs.
	other, err := dovecottest.NewPKI(filepath.Join(dir, "o"), "other")
	require.NoError(t, err)
	a, _ := os.ReadFile(pki.CAFile)
	b, _ := os.ReadFile(other.CAFile)
	bundle := filepath.Join(dir, "bundle.pem")
	require.NoError(t, os.WriteFile(bundle, append(append(a, '\n'), b...), 0o644))
	_, err = imapconn.LoadCAFile(bundle)
	require.NoError(t, err)

	empty := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not a certificate\n"), 0o644))
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.pem"): "no such file",
		empty:                             "no PEM certificate",
		junk:                              "not a PEM file",
		pki.KeyFile:                       "holds a PRIVATE KEY block",
	} {
		_, err := imapconn.LoadCAFile(path)
		require.ErrorContains(t, err, want, path)
	}
}
