// Package dovecottest starts private Dovecot 2.3 instances for tests and
// benchmarks: each has its own configuration, base_dir, state_dir,
// instance_name, maildir root, log file and free loopback port, and never
// touches a system Dovecot.
//
// With Options.TLS an instance also speaks TLS (STARTTLS and imaps) with a
// certificate from a test CA generated for it (PKI).
//
// Pitfalls it takes care of (Dovecot 2.3.19 on Debian 12):
//   - Dovecot refuses mail access as uid 0 ("userdb returned 0 as uid"), so
//     when running as root the static userdb uses uid/gid 65534 and the
//     instance directory is made traversable (0755) with the maildir root
//     owned by 65534. As another user, mail is owned by that user and the
//     login/internal service users are that user too (no chroot).
//   - The unix sockets live under base_dir, whose path must stay short
//     (sun_path is 108 bytes), so instances live in os.MkdirTemp("", "dc-")
//     and not in t.TempDir().
//   - The master is run in the foreground (-F) as a child process, so Stop can
//     wait for it; the pid file is still written to base_dir/master.pid.
//   - The message size limit is the quota plugin's quota_max_mail_size: an
//     APPEND over it is answered "NO [LIMIT] Mail size is larger than the
//     maximum size allowed by server configuration", after the (LITERAL+)
//     literal was consumed, so the connection stays usable. Dovecot 2.3
//     does not advertise APPENDLIMIT.
package dovecottest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
)

// DefaultSpecialUse names the special-use folders of an instance when
// Options.SpecialUse is nil.
var DefaultSpecialUse = map[imap.MailboxAttr]string{
	imap.MailboxAttrSent:    "Sent",
	imap.MailboxAttrDrafts:  "Drafts",
	imap.MailboxAttrTrash:   "Trash",
	imap.MailboxAttrJunk:    "Junk",
	imap.MailboxAttrArchive: "Archive",
}

// Options configure an instance. The zero value is a Maildir++ server with
// '.' as separator, the default special-use folders, no size limit.
type Options struct {
	// Name labels the instance (instance_name "mailshift-<name>-<port>").
	Name string
	// Separator is the hierarchy separator: '.' (default) or '/'.
	Separator rune
	// Layout is the maildir layout: "" means Maildir++ for '.' and "fs" for
	// '/'; "maildir++" or "fs" force one.
	Layout string
	// SpecialUse maps attributes to folder names, e.g. \Sent -> "Sent Items".
	// Nil means DefaultSpecialUse; an empty map defines none.
	SpecialUse map[imap.MailboxAttr]string
	// NoAutoCreate leaves special-use folders to be created by clients;
	// by default they are created (and subscribed) at first login.
	NoAutoCreate bool
	// MailFsync is mail_fsync: "" (Dovecot's default "optimized"), "always"
	// or "never" (benchmarks).
	MailFsync string
	// MaxMailSize, if > 0, rejects saving (APPEND) a message larger than this
	// many bytes with NO [LIMIT] (quota_max_mail_size).
	MaxMailSize int64
	// QuotaStorage, if > 0, is every user's storage quota in bytes; an APPEND
	// over it is answered NO [OVERQUOTA].
	QuotaStorage int64
	// Host is the loopback IPv4 address the listeners bind to: "" means
	// 127.0.0.1, or 127.0.0.2 with TLSRequired (see there).
	Host string
	// Port is the IMAP port on Host; 0 picks a free one.
	Port int
	// Dir is the instance directory; "" means a fresh temporary directory
	// that Stop removes.
	Dir string
	// Debug turns on auth_verbose, auth_debug and mail_debug.
	Debug bool
	// ExtraConfig is appended verbatim to dovecot.conf.
	ExtraConfig string
	// TLS turns SSL on (ssl = yes) with a server certificate for Host,
	// 127.0.0.1, ::1 and localhost from a CA generated for the instance (PKI): the
	// imap listener offers STARTTLS, and an imaps listener (implicit TLS)
	// opens on a second free loopback port (TLSAddr, TLSURL). Plaintext
	// logins stay allowed.
	TLS bool
	// TLSRequired is TLS with ssl = required and disable_plaintext_auth =
	// yes: the imap listener advertises LOGINDISABLED and refuses any login
	// before STARTTLS. Dovecot counts a connection whose remote address is
	// its local address as secured and lets it log in in plaintext all the
	// same, so with TLSRequired Host defaults to 127.0.0.2, which clients
	// reach from 127.0.0.1.
	TLSRequired bool
	// TLSPort is the imaps port when TLS is on; 0 picks a free one.
	TLSPort int
	// FastLogins runs the login processes in Dovecot's high-performance
	// mode (service_count = 0, one process per core kept waiting), which
	// its documentation advises for sites larger than small ones; the
	// default is Dovecot's own, high-security mode: a new imap-login
	// process per connection, about 20 ms of CPU each on the 2-core
	// machine of docs/benchmarks.md.
	FastLogins bool
	// OAuth2, when set, also accepts SASL XOAUTH2 and OAUTHBEARER with
	// JWTs that Dovecot validates locally (passdb oauth2, introspection
	// local) against the keys given to AddOAuth2Key.
	OAuth2 *OAuth2
}

// OAuth2 configures the instance's token validation.
type OAuth2 struct {
	// Issuer is the only issuer (iss) accepted.
	Issuer string
	// UsernameFormat is applied to the SASL user and to the token's upn
	// claim before they are compared: "%Lu" (the default) wants one token
	// per mailbox; "%Ld" compares domains only, so one token whose upn is
	// any address of a domain opens every mailbox of it, as an Exchange
	// Online app-only token does.
	UsernameFormat string
}

// Instance is one running Dovecot.
type Instance struct {
	opts     Options
	dir      string
	ownDir   bool
	conf     string
	mailRoot string
	passwd   string
	logPath  string
	baseDir  string
	port     int
	tlsPort  int
	pki      *PKI
	uid, gid int
	dovecot  string
	doveadm  string

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	// groups are the process groups of every master started (one per
	// start): Stop kills what is left in them, e.g. the children of a
	// master killed alone by KillMaster.
	groups []int

	mu    sync.Mutex
	users map[string]string
	stop  sync.Once
	err   error
}

// ErrNotInstalled is returned by Start when Dovecot is missing.
var ErrNotInstalled = errors.New("dovecot is not installed (run scripts/install-test-deps.sh, or apt-get install dovecot-imapd)")

func findBin(name string, dirs ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Binaries returns the paths of dovecot and doveadm, or ErrNotInstalled.
func Binaries() (dovecot, doveadm string, err error) {
	dovecot = findBin("dovecot", "/usr/sbin", "/usr/local/sbin")
	doveadm = findBin("doveadm", "/usr/bin", "/usr/local/bin", "/usr/sbin")
	if dovecot == "" || doveadm == "" {
		return "", "", ErrNotInstalled
	}
	// dovecot-core alone has no imap binary (it is in dovecot-imapd).
	for _, d := range []string{"/usr/lib/dovecot", "/usr/libexec/dovecot", "/usr/local/libexec/dovecot"} {
		if _, err := os.Stat(filepath.Join(d, "imap")); err == nil {
			return dovecot, doveadm, nil
		}
	}
	return "", "", fmt.Errorf("%w: the imap binary is missing (dovecot-imapd)", ErrNotInstalled)
}

// Available reports whether Start can work on this machine.
func Available() error {
	_, _, err := Binaries()
	return err
}

// Start creates the configuration and starts the instance, returning once it
// answers IMAP greetings.
func Start(opts Options) (*Instance, error) {
	dovecot, doveadm, err := Binaries()
	if err != nil {
		return nil, err
	}
	if opts.Separator == 0 {
		opts.Separator = '.'
	}
	if opts.Separator != '.' && opts.Separator != '/' {
		return nil, fmt.Errorf("dovecottest: separator %q: use '.' or '/'", opts.Separator)
	}
	switch opts.Layout {
	case "":
		if opts.Separator == '/' {
			opts.Layout = "fs"
		} else {
			opts.Layout = "maildir++"
		}
	case "fs", "maildir++":
	default:
		return nil, fmt.Errorf("dovecottest: layout %q: use \"fs\" or \"maildir++\"", opts.Layout)
	}
	if opts.SpecialUse == nil {
		opts.SpecialUse = DefaultSpecialUse
	}
	if opts.Name == "" {
		opts.Name = "dovecot"
	}
	if opts.TLSRequired {
		opts.TLS = true
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
		if opts.TLSRequired {
			opts.Host = "127.0.0.2"
		}
	}
	if ip := net.ParseIP(opts.Host); ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("dovecottest: host %q: use a loopback IPv4 address", opts.Host)
	}
	inst := &Instance{opts: opts, dovecot: dovecot, doveadm: doveadm, users: map[string]string{}}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "dc-")
		if err != nil {
			return nil, err
		}
		inst.dir, inst.ownDir = d, true
	} else {
		inst.dir = opts.Dir
		if err := os.MkdirAll(inst.dir, 0o755); err != nil {
			return nil, err
		}
	}
	inst.dir, _ = filepath.Abs(inst.dir)
	if err := inst.prepare(); err != nil {
		inst.cleanup()
		return nil, err
	}
	// A free port can be taken between picking and binding: retry.
	for attempt := 0; ; attempt++ {
		inst.port, inst.tlsPort = opts.Port, opts.TLSPort
		if inst.port == 0 {
			if inst.port, err = freePort(opts.Host); err != nil {
				inst.cleanup()
				return nil, err
			}
		}
		if opts.TLS && inst.tlsPort == 0 {
			if inst.tlsPort, err = freePort(opts.Host); err != nil {
				inst.cleanup()
				return nil, err
			}
		}
		err = inst.start()
		if err == nil {
			return inst, nil
		}
		fixed := opts.Port != 0 && (!opts.TLS || opts.TLSPort != 0)
		if fixed || attempt == 4 || !strings.Contains(err.Error(), "in use") {
			inst.cleanup()
			return nil, err
		}
	}
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (inst *Instance) prepare() error {
	// Other users (the mail uid) must traverse the instance directory.
	if err := os.Chmod(inst.dir, 0o755); err != nil {
		return err
	}
	if inst.opts.TLS {
		pki, err := NewPKI(filepath.Join(inst.dir, "tls"), inst.opts.Name, inst.opts.Host)
		if err != nil {
			return err
		}
		inst.pki = pki
	}
	inst.baseDir = filepath.Join(inst.dir, "run")
	inst.mailRoot = filepath.Join(inst.dir, "mail")
	inst.passwd = filepath.Join(inst.dir, "passwd.d")
	inst.logPath = filepath.Join(inst.dir, "dovecot.log")
	inst.conf = filepath.Join(inst.dir, "dovecot.conf")
	if len(inst.baseDir)+40 > 107 {
		return fmt.Errorf("dovecottest: instance directory %q is too long for unix sockets", inst.dir)
	}
	for _, d := range []string{inst.baseDir, filepath.Join(inst.dir, "state"), inst.mailRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	inst.uid, inst.gid = os.Getuid(), os.Getgid()
	if inst.uid == 0 {
		inst.uid, inst.gid = 65534, 65534
		if err := os.Chown(inst.mailRoot, inst.uid, inst.gid); err != nil {
			return err
		}
	}
	if o := inst.opts.OAuth2; o != nil {
		format := o.UsernameFormat
		if format == "" {
			format = "%Lu"
		}
		conf := fmt.Sprintf("introspection_mode = local\nlocal_validation_key_dict = fs:posix:prefix=%s/\nusername_attribute = upn\nusername_format = %s\nissuers = %s\n",
			inst.oauth2Keys(), format, o.Issuer)
		if err := os.MkdirAll(inst.oauth2Keys(), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(inst.dir, "oauth2.conf.ext"), []byte(conf), 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(inst.passwd, 0o755)
}

func (inst *Instance) oauth2Keys() string { return filepath.Join(inst.dir, "oauth2-keys") }

// AddOAuth2Key installs a token signing key that the instance trusts:
// for RS256 a PEM public key, named by kid ("" is "default"). Dovecot
// reads keys when it validates a token, so a key added later counts.
func (inst *Instance) AddOAuth2Key(alg, kid string, key []byte) error {
	if inst.opts.OAuth2 == nil {
		return errors.New("dovecottest: AddOAuth2Key needs Options.OAuth2")
	}
	if kid == "" {
		kid = "default"
	}
	dir := filepath.Join(inst.oauth2Keys(), "default", alg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, kid), key, 0o644)
}

func quote(s string) string {
	if strings.ContainsAny(s, " \"\\#{}=") || s == "" {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return s
}

// config renders dovecot.conf (Dovecot 2.3 syntax).
func (inst *Instance) config() string {
	o := inst.opts
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Generated by mailshift internal/dovecottest; private test instance.")
	p("instance_name = mailshift-%s-%d", o.Name, inst.port)
	p("base_dir = %s", inst.baseDir)
	p("state_dir = %s", filepath.Join(inst.dir, "state"))
	p("log_path = %s", inst.logPath)
	p("info_log_path = %s", inst.logPath)
	p("debug_log_path = %s", inst.logPath)
	p("protocols = imap")
	p("listen = %s", o.Host)
	switch {
	case o.TLSRequired:
		p("ssl = required")
		p("disable_plaintext_auth = yes")
	case o.TLS:
		p("ssl = yes")
		p("disable_plaintext_auth = no")
	default:
		p("ssl = no")
		p("disable_plaintext_auth = no")
	}
	if o.TLS {
		p("ssl_cert = <%s", inst.pki.CertFile)
		p("ssl_key = <%s", inst.pki.KeyFile)
	}
	if o.OAuth2 != nil {
		p("auth_mechanisms = plain login xoauth2 oauthbearer")
	} else {
		p("auth_mechanisms = plain login")
	}
	p("auth_failure_delay = 0")
	p("first_valid_uid = 1")
	p("first_valid_gid = 0")
	p("mail_max_userip_connections = 200")
	p("default_process_limit = 200")
	p("default_vsz_limit = 1G")
	p("shutdown_clients = yes")
	if os.Getuid() != 0 {
		name := strconv.Itoa(os.Getuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		p("default_login_user = %s", name)
		p("default_internal_user = %s", name)
		p("default_internal_group = %s", grpName())
	}
	loc := "maildir:" + inst.mailRoot + "/%u"
	if o.Layout == "fs" {
		loc += ":LAYOUT=fs"
	}
	p("mail_location = %s", loc)
	if o.MailFsync != "" {
		p("mail_fsync = %s", o.MailFsync)
	}
	if o.Debug {
		p("auth_verbose = yes")
		p("auth_debug = yes")
		p("mail_debug = yes")
	}
	p("passdb {")
	p("  driver = passwd-file")
	p("  args = scheme=PLAIN username_format=%%u %s/%%u", inst.passwd)
	if o.OAuth2 != nil {
		p("  mechanisms = plain login")
	}
	p("}")
	if o.OAuth2 != nil {
		p("passdb {")
		p("  driver = oauth2")
		p("  mechanisms = xoauth2 oauthbearer")
		p("  args = %s", filepath.Join(inst.dir, "oauth2.conf.ext"))
		p("}")
	}
	p("userdb {")
	p("  driver = static")
	p("  args = uid=%d gid=%d home=%s/%%u", inst.uid, inst.gid, inst.mailRoot)
	p("}")
	p("service imap-login {")
	p("  inet_listener imap {")
	p("    address = %s", o.Host)
	p("    port = %d", inst.port)
	p("  }")
	p("  inet_listener imaps {")
	if o.TLS {
		p("    address = %s", o.Host)
		p("    port = %d", inst.tlsPort)
		p("    ssl = yes")
	} else {
		p("    port = 0")
	}
	p("  }")
	if os.Getuid() != 0 {
		p("  chroot =")
	}
	if o.FastLogins {
		p("  service_count = 0")
		p("  process_min_avail = %d", runtime.NumCPU())
	}
	p("}")
	// Without the anvil-auth-penalty socket the auth process disables its
	// penalty, which would otherwise delay every login from 127.0.0.1 by
	// 2-15 s after a failed one (tests fail logins on purpose).
	p("service anvil {")
	if os.Getuid() != 0 {
		p("  chroot =")
	}
	p("  unix_listener anvil-auth-penalty {")
	p("    mode = 0")
	p("  }")
	p("}")
	p("namespace inbox {")
	p("  inbox = yes")
	p("  prefix =")
	p("  separator = %c", o.Separator)
	attrs := make([]string, 0, len(o.SpecialUse))
	for a := range o.SpecialUse {
		attrs = append(attrs, string(a))
	}
	sort.Strings(attrs)
	auto := "subscribe"
	if o.NoAutoCreate {
		auto = "no"
	}
	for _, a := range attrs {
		p("  mailbox %s {", quote(o.SpecialUse[imap.MailboxAttr(a)]))
		p("    special_use = %s", a)
		p("    auto = %s", auto)
		p("  }")
	}
	p("}")
	if o.MaxMailSize > 0 || o.QuotaStorage > 0 {
		p("mail_plugins = $mail_plugins quota")
		p("plugin {")
		p("  quota = count:User quota")
		p("  quota_vsizes = yes")
		if o.MaxMailSize > 0 {
			p("  quota_max_mail_size = %dB", o.MaxMailSize)
		}
		if o.QuotaStorage > 0 {
			p("  quota_rule = *:storage=%dB", o.QuotaStorage)
		}
		p("}")
		// GETQUOTAROOT (RFC 9208), which readiness uses to see the headroom.
		p("protocol imap {")
		p("  mail_plugins = $mail_plugins imap_quota")
		p("}")
	}
	if o.ExtraConfig != "" {
		p("%s", o.ExtraConfig)
	}
	return b.String()
}

func grpName() string {
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		return g.Name
	}
	return strconv.Itoa(os.Getgid())
}

func (inst *Instance) start() error {
	if err := os.WriteFile(inst.conf, []byte(inst.config()), 0o644); err != nil {
		return err
	}
	startLog := filepath.Join(inst.dir, "startup.log")
	out, err := os.Create(startLog)
	if err != nil {
		return err
	}
	defer out.Close()
	os.Remove(filepath.Join(inst.baseDir, "master.pid"))
	cmd := exec.Command(inst.dovecot, "-F", "-c", inst.conf)
	cmd.Dir = inst.dir
	cmd.Stdout, cmd.Stderr = out, out
	// Dovecot dies with the test process instead of lingering. Pdeathsig
	// fires when the OS thread that started the child exits, so the
	// starting goroutine stays locked to its thread until the child exits.
	// Setpgid puts the master and every process it forks (imap,
	// imap-login, auth, ...) in a process group of their own, so Kill can
	// SIGKILL them all at once without touching the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	inst.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		inst.groups = append(inst.groups, cmd.Process.Pid)
		started <- nil
		inst.waitErr = cmd.Wait()
		close(inst.exited)
	}()
	if err := <-started; err != nil {
		return err
	}
	inst.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-inst.exited:
			b, _ := os.ReadFile(startLog)
			l, _ := os.ReadFile(inst.logPath)
			return fmt.Errorf("dovecottest: dovecot exited at startup (%v): %s%s", inst.waitErr, bytes.TrimSpace(b), tail(l, 2000))
		default:
		}
		if greet(inst.Addr()) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			inst.kill()
			l, _ := os.ReadFile(inst.logPath)
			return fmt.Errorf("dovecottest: no IMAP greeting on %s after 20s; log: %s", inst.Addr(), tail(l, 2000))
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func greet(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("greeting %q", line)
	}
	return nil
}

// Addr is host:port of the IMAP listener.
func (inst *Instance) Addr() string { return net.JoinHostPort(inst.opts.Host, strconv.Itoa(inst.port)) }

// URL is the imap:// URL of the listener.
func (inst *Instance) URL() string { return "imap://" + inst.Addr() }

// Port is the IMAP port.
func (inst *Instance) Port() int { return inst.port }

// TLSAddr is host:port of the imaps listener (implicit TLS), or "" when
// Options.TLS is off.
func (inst *Instance) TLSAddr() string {
	if !inst.opts.TLS {
		return ""
	}
	return net.JoinHostPort(inst.opts.Host, strconv.Itoa(inst.tlsPort))
}

// TLSURL is the imaps:// URL of the imaps listener, or "" when Options.TLS
// is off.
func (inst *Instance) TLSURL() string {
	if !inst.opts.TLS {
		return ""
	}
	return "imaps://" + inst.TLSAddr()
}

// PKI is the test CA and server certificate of a TLS instance, or nil.
func (inst *Instance) PKI() *PKI { return inst.pki }

// Separator is the hierarchy separator.
func (inst *Instance) Separator() rune { return inst.opts.Separator }

// Options returns the options the instance was started with (defaults
// filled in).
func (inst *Instance) Options() Options { return inst.opts }

// Dir is the instance directory.
func (inst *Instance) Dir() string { return inst.dir }

// ConfigPath is the dovecot.conf of the instance.
func (inst *Instance) ConfigPath() string { return inst.conf }

// LogPath is the log file of the instance.
func (inst *Instance) LogPath() string { return inst.logPath }

// Log returns the last n bytes of the log (everything when n <= 0).
func (inst *Instance) Log(n int) string {
	b, _ := os.ReadFile(inst.logPath)
	if n > 0 {
		return tail(b, n)
	}
	return string(b)
}

// PID is the master process id (from base_dir/master.pid).
func (inst *Instance) PID() int {
	b, err := os.ReadFile(filepath.Join(inst.baseDir, "master.pid"))
	if err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid
		}
	}
	if inst.cmd != nil && inst.cmd.Process != nil {
		return inst.cmd.Process.Pid
	}
	return 0
}

// SpecialUseName is this instance's folder name for a special-use
// attribute, or "".
func (inst *Instance) SpecialUseName(attr imap.MailboxAttr) string {
	return inst.opts.SpecialUse[attr]
}

// AddUser adds or updates a login. Each user has its own passwd-file
// (passdb args use %u), which Dovecot opens at the first authentication of
// that user, so new users work at once without a restart. Dovecot re-checks
// a known file at most once a second by mtime and size, so changing an
// existing user's password waits for that before returning.
func (inst *Instance) AddUser(name, password string) error {
	if name == "" || strings.ContainsAny(name, ":\n/%") || strings.HasPrefix(name, ".") || strings.ContainsAny(password, ":\n") {
		return fmt.Errorf("dovecottest: unusable user name or password for %q", name)
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	old, known := inst.users[name]
	if known && old == password {
		return nil
	}
	inst.users[name] = password
	path := filepath.Join(inst.passwd, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(name+":{PLAIN}"+password+"\n"), 0o644); err != nil {
		return err
	}
	if known {
		// A distinct mtime, then past Dovecot's once-a-second re-check.
		if fi, err := os.Stat(path); err == nil {
			t := fi.ModTime().Add(time.Second)
			_ = os.Chtimes(tmp, t, t)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if known {
		time.Sleep(1100 * time.Millisecond)
	}
	return nil
}

// MaildirOf is the maildir root of a user.
func (inst *Instance) MaildirOf(user string) string { return filepath.Join(inst.mailRoot, user) }

// MailRoot is the directory that holds every user's maildir.
func (inst *Instance) MailRoot() string { return inst.mailRoot }

// DeleteMail removes every user's mail (the maildirs and indexes) while the
// server runs; users stay. Sessions must be closed first.
func (inst *Instance) DeleteMail() error {
	entries, err := os.ReadDir(inst.mailRoot)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(inst.mailRoot, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Doveadm runs doveadm against this instance's configuration and returns
// its combined output.
func (inst *Instance) Doveadm(args ...string) (string, error) {
	cmd := inst.DoveadmCmd(args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("doveadm %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// DoveadmCmd is the unstarted command for doveadm -c <conf> args....
func (inst *Instance) DoveadmCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(inst.doveadm, append([]string{"-c", inst.conf}, args...)...)
	cmd.Dir = inst.dir
	return cmd
}

// Stop terminates the master (SIGTERM to the PID of its pid file), waits up
// to 10 s (then SIGKILL), and removes the instance directory if Start
// created it. It is safe to call more than once.
func (inst *Instance) Stop() error {
	inst.stop.Do(func() {
		inst.err = inst.kill()
		for _, g := range inst.groups {
			_ = syscall.Kill(-g, syscall.SIGKILL) // leftovers of a master killed alone
		}
		inst.cleanup()
	})
	return inst.err
}

func (inst *Instance) kill() error {
	if inst.cmd == nil {
		return nil
	}
	select {
	case <-inst.exited:
		return nil
	default:
	}
	if pid := inst.PID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	if inst.cmd.Process != nil {
		_ = inst.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-inst.exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = inst.cmd.Process.Kill()
	select {
	case <-inst.exited:
	case <-time.After(5 * time.Second):
	}
	return fmt.Errorf("dovecottest: dovecot %d did not stop within 10s after SIGTERM; killed", inst.cmd.Process.Pid)
}

// Kill SIGKILLs every process of the instance at once, the master and all
// its children (they share its process group), as a crash of the host or
// an OOM kill of the service's cgroup would, and waits until none is left.
// Nothing runs to clean up: the mail, the indexes, the configuration, the
// pid file and any lock file a process held stay as they were. Restart
// starts the instance again.
func (inst *Instance) Kill() error {
	if inst.cmd == nil || inst.cmd.Process == nil {
		return errors.New("dovecottest: not started")
	}
	pgid := inst.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("dovecottest: kill -9 of process group %d: %w", pgid, err)
	}
	select {
	case <-inst.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("dovecottest: dovecot %d still running 10 s after SIGKILL", pgid)
	}
	// The children are reparented and reaped by init: wait until the
	// group is empty, so that Restart finds the ports free.
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-pgid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecottest: processes of group %d still alive 10 s after SIGKILL", pgid)
		}
	}
	return nil
}

// LockFiles lists the dotlock files (*.lock, e.g. dovecot-uidlist.lock)
// under the mail root, relative to it: after Kill, the ones a killed
// process left behind.
func (inst *Instance) LockFiles() []string {
	var locks []string
	_ = filepath.WalkDir(inst.mailRoot, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".lock") {
			rel, _ := filepath.Rel(inst.mailRoot, p)
			locks = append(locks, rel)
		}
		return nil
	})
	return locks
}

// KillMaster SIGKILLs the master process alone, as `kill -9 $(cat
// master.pid)` or an OOM kill of that one process would, and waits for it
// to exit. Its children (imap sessions, imap-login, auth, ...) are left to
// notice on their own; Stop kills whatever of them is still alive.
func (inst *Instance) KillMaster() error {
	if inst.cmd == nil || inst.cmd.Process == nil {
		return errors.New("dovecottest: not started")
	}
	if err := inst.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-inst.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("dovecottest: dovecot %d still running 10 s after SIGKILL", inst.cmd.Process.Pid)
	}
}

// Restart starts a stopped or killed instance again on the same
// directory, configuration, mail and ports, and returns once it answers
// IMAP greetings. Users added before are still there (their passwd files
// are in the instance directory).
func (inst *Instance) Restart() error {
	if inst.cmd != nil {
		select {
		case <-inst.exited:
		default:
			return errors.New("dovecottest: Restart of a running instance; Kill it first")
		}
	}
	return inst.start()
}

func (inst *Instance) cleanup() {
	if inst.ownDir && os.Getenv("MAILSHIFT_KEEP_DOVECOT") == "" {
		os.RemoveAll(inst.dir)
	}
}
