package estate

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Delimiter is the hierarchy delimiter of the in-process server (the one
// imapmemserver hard-codes).
const Delimiter = '/'

// ServerOptions configures StartServer.
type ServerOptions struct {
	// Name identifies the server in log lines ("source", "target").
	Name string
	// Logger receives the imapserver's error log. Nil means quiet.
	Logger *slog.Logger
	// IMAP4rev2 additionally advertises IMAP4rev2. Off by default so that the
	// server looks like Dovecot/Exchange (IMAP4rev1 only): then the go-imap
	// client sends mailbox names in modified UTF-7. With IMAP4rev2 advertised
	// the go-imap client sends raw UTF-8 names instead (the server accepts both
	// and always answers in modified UTF-7 unless the client ENABLEs
	// IMAP4rev2 or UTF8=ACCEPT).
	IMAP4rev2 bool
	// AppendLimit, if > 0, makes APPEND of a message larger than this many
	// bytes fail with "NO [TOOBIG]" (like a real target's size limit). It is
	// enforced by the session and deliberately not advertised as
	// APPENDLIMIT=n: imapserver beta.8 checks its own advertised limit before
	// consuming a LITERAL+ literal and then parses the message body as
	// commands.
	AppendLimit int64
	// Throttle, if set, is asked at every APPEND; when it says so, the
	// message is refused as Exchange Online refuses one when it throttles
	// ("BAD Request is throttled. Suggested Backoff Time: <N>
	// milliseconds") and the connection is dropped a moment later.
	Throttle func() (backoff time.Duration, throttle bool)
	// ThrottleFetch is Throttle for FETCH commands: the reads of a
	// validation or a readiness check.
	ThrottleFetch func() (backoff time.Duration, throttle bool)
	// ThrottleDrop is how long after a throttling answer the connection is
	// dropped (default 50ms); the APPENDs that arrive meanwhile are served,
	// each StragglerDelay late. A client that gives up on a throttled
	// pipeline at once then finds messages stored after it looked.
	ThrottleDrop   time.Duration
	StragglerDelay time.Duration
	// Bearer, if set, makes the server offer AUTHENTICATE XOAUTH2, as
	// Exchange Online does for app-only tokens, and checks each token with
	// it for the mailbox the client names; a refused token is answered as
	// Exchange answers one (an error challenge, then NO).
	Bearer func(user, token string) error
	// Exchange makes the server behave like Exchange Online's IMAP as
	// documented in docs/exchange-online.md (see exchange.go):
	// no SPECIAL-USE/CREATE-SPECIAL-USE (LIST shows no special-use
	// attributes, CREATE with USE is BAD); every user starts with Exchange's
	// well-known folders (ExchangeFolders, in the user's Language); APPEND or
	// STORE of a keyword other than $MDNSent is answered "BAD Command
	// Argument Error. 11" and PERMANENTFLAGS lacks \*; AppendLimit defaults
	// to ExchangeAppendLimit; and messages are stored re-rendered (Rerender),
	// so FETCH returns other bytes and another RFC822.SIZE than were
	// appended. Throttle works as without it.
	Exchange bool
	// Language, with Exchange, gives a user's mailbox language ("en", the
	// default, or "de"), which names its well-known folders.
	Language func(user string) string
}

// Server is an in-process IMAP server (go-imap v2 imapserver +
// imapmemserver) listening on 127.0.0.1.
//
// It wraps imapmemserver's session to add what the in-memory backend lacks:
//   - SPECIAL-USE attributes (\Sent, \Drafts, ...) in LIST. imapmemserver
//     ignores CREATE's USE option and never sets the attributes, so the
//     server keeps its own per-user folder registry and answers LIST itself.
//   - \HasChildren / \HasNoChildren (CHILDREN).
//   - CREATE creates missing superior folders, RENAME renames inferiors and
//     DELETE of a folder with children fails with NO [HASCHILDREN], as RFC
//     3501 servers such as Dovecot do (imapmemserver does none of that).
type Server struct {
	name  string
	opts  ServerOptions
	mem   *imapmemserver.Server
	imap  *imapserver.Server
	ln    net.Listener
	done  chan struct{}
	close sync.Once
	err   error

	mu       sync.Mutex
	accounts map[string]*account
}

// account is the wrapper's view of one user.
type account struct {
	user     *imapmemserver.User
	password string

	mu      sync.Mutex
	folders map[string]*folderMeta // by name (INBOX upper-case)
}

type folderMeta struct {
	specialUse []imap.MailboxAttr
	subscribed bool
}

// Capabilities advertised by StartServer (IMAP4rev2 only with
// ServerOptions.IMAP4rev2). imapserver adds SASL-IR, LITERAL-, AUTH=PLAIN
// and, once authenticated, UNSELECT, ENABLE, IDLE and UTF8=ACCEPT itself.
func Capabilities(rev2 bool) imap.CapSet {
	caps := imap.CapSet{
		imap.CapIMAP4rev1:        {},
		imap.CapLiteralPlus:      {},
		imap.CapSpecialUse:       {},
		imap.CapCreateSpecialUse: {},
		imap.CapUIDPlus:          {},
		imap.CapMove:             {},
		imap.CapNamespace:        {},
		imap.CapChildren:         {},
	}
	if rev2 {
		caps[imap.CapIMAP4rev2] = struct{}{}
	}
	return caps
}

type slogAdapter struct {
	l    *slog.Logger
	name string
}

func (a slogAdapter) Printf(format string, args ...any) {
	if a.l != nil {
		a.l.Warn(fmt.Sprintf(format, args...), "imapserver", a.name)
	}
}

// StartServer starts a server on 127.0.0.1:0.
func StartServer(opts ServerOptions) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	caps := Capabilities(opts.IMAP4rev2)
	if opts.Exchange {
		caps = ExchangeCapabilities()
		if opts.AppendLimit == 0 {
			opts.AppendLimit = ExchangeAppendLimit
		}
	}
	s := &Server{
		name:     opts.Name,
		opts:     opts,
		mem:      imapmemserver.New(),
		ln:       ln,
		done:     make(chan struct{}),
		accounts: map[string]*account{},
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{srv: s, conn: c}, nil, nil
		},
		Caps:         caps,
		Logger:       slogAdapter{opts.Logger, opts.Name},
		InsecureAuth: true, // loopback only
	})
	go func() {
		defer close(s.done)
		if err := s.imap.Serve(ln); err != nil && opts.Logger != nil {
			opts.Logger.Warn("imap server stopped", "imapserver", opts.Name, "err", err)
		}
	}()
	return s, nil
}

// Name returns ServerOptions.Name.
func (s *Server) Name() string { return s.name }

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns "imap://127.0.0.1:port".
func (s *Server) URL() string { return "imap://" + s.Addr() }

// Account returns the credentials of mb on this server.
func (s *Server) Account(mb *Mailbox) Account {
	return Account{Addr: s.Addr(), User: mb.User, Password: mb.Password}
}

// Close stops the listener and closes every connection. It is idempotent.
func (s *Server) Close() error {
	s.close.Do(func() {
		s.err = s.imap.Close()
		<-s.done
	})
	return s.err
}

// AddUser creates user with an (empty, subscribed) INBOX. It is idempotent;
// the password of an existing user is left unchanged.
func (s *Server) AddUser(user, password string) error {
	_, err := s.addUser(user, password)
	return err
}

func (s *Server) addUser(user, password string) (*account, error) {
	if user == "" {
		return nil, errors.New("estate: empty user name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[user]; a != nil {
		return a, nil
	}
	a := &account{
		user:     imapmemserver.NewUser(user, password),
		password: password,
		folders:  map[string]*folderMeta{},
	}
	if err := a.create("INBOX", nil); err != nil {
		return nil, err
	}
	a.folders["INBOX"].subscribed = true
	if s.opts.Exchange {
		if err := s.createExchangeFolders(a, user); err != nil {
			return nil, err
		}
	}
	s.mem.AddUser(a.user)
	s.accounts[user] = a
	return a, nil
}

func (s *Server) account(user string) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts[user]
}

// AddUsers adds every mailbox's user of e with an empty INBOX (a target).
func (s *Server) AddUsers(e *Estate) error {
	for _, mb := range e.Mailboxes() {
		if err := s.AddUser(mb.User, mb.Password); err != nil {
			return fmt.Errorf("estate: add user %s: %w", mb.User, err)
		}
	}
	return nil
}

// Load adds every mailbox of e and seeds all its folders (subscribed, with
// their special-use attribute) and messages (with flags and INTERNALDATE),
// in folder order, so UIDs follow Folder.Messages order starting at 1.
// It appends through imapmemserver's User.Append in-process (no socket).
// Loading the same estate twice appends the messages twice.
func (s *Server) Load(e *Estate) error {
	mbs := e.Mailboxes()
	errs := make([]error, len(mbs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, mb := range mbs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = s.loadMailbox(mb)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) loadMailbox(mb *Mailbox) error {
	a, err := s.addUser(mb.User, mb.Password)
	if err != nil {
		return fmt.Errorf("estate: add user %s: %w", mb.User, err)
	}
	for _, f := range mb.Folders {
		var su []imap.MailboxAttr
		if f.SpecialUse != "" && !s.opts.Exchange {
			su = []imap.MailboxAttr{f.SpecialUse}
		}
		if err := a.create(f.Name, su); err != nil && !isAlreadyExists(err) {
			return fmt.Errorf("estate: %s: create %q: %w", mb.User, f.Name, err)
		}
		a.setSubscribed(f.Name, true)
		for i := range f.Messages {
			msg := &f.Messages[i]
			raw, flags := msg.Raw, msg.Flags
			if s.opts.Exchange {
				// What Exchange holds: re-rendered, without keywords.
				raw = Rerender(raw)
				flags = slices.DeleteFunc(slices.Clone(flags), func(f imap.Flag) bool { return !exchangeFlagAllowed(f) })
			}
			_, err := a.user.Append(f.Name, &literal{Reader: bytes.NewReader(raw), size: int64(len(raw))},
				&imap.AppendOptions{Flags: flags, Time: msg.Date})
			if err != nil {
				return fmt.Errorf("estate: %s: append to %q: %w", mb.User, f.Name, err)
			}
		}
	}
	return nil
}

type literal struct {
	*bytes.Reader
	size int64
}

func (l *literal) Size() int64 { return l.size }

func isAlreadyExists(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists
}

func canonName(name string) string {
	name = strings.TrimRight(name, string(Delimiter))
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if len(name) > 6 && strings.EqualFold(name[:6], "INBOX/") {
		return "INBOX" + name[5:]
	}
	return name
}

// create creates name and any missing superior folders.
func (a *account) create(name string, specialUse []imap.MailboxAttr) error {
	name = canonName(name)
	if name == "" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Empty mailbox name"}
	}
	for _, su := range specialUse {
		switch su {
		case imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts, imap.MailboxAttrFlagged,
			imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrImportant:
		default:
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "Unsupported special-use attribute " + string(su)}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.folders[name] != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	}
	parts := strings.Split(name, string(Delimiter))
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], string(Delimiter))
		if p == "" || a.folders[p] != nil {
			continue
		}
		if err := a.user.Create(p, nil); err != nil && !isAlreadyExists(err) {
			return err
		}
		a.folders[p] = &folderMeta{}
	}
	a.folders[name].specialUse = slices.Clone(specialUse)
	return nil
}

func (a *account) setSubscribed(name string, sub bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m := a.folders[canonName(name)]; m != nil {
		m.subscribed = sub
	}
}

// session wraps imapmemserver's UserSession (nil until LOGIN).
type session struct {
	*imapmemserver.UserSession
	srv  *Server
	conn *imapserver.Conn
	acct *account
	// throttled: a throttling answer was sent; the connection is dropped
	// soon (ServerOptions.ThrottleDrop).
	throttled bool
}

var _ imapserver.SessionIMAP4rev2 = (*session)(nil)

func (s *session) Login(username, password string) error {
	a := s.srv.account(username)
	if a == nil {
		return imapserver.ErrAuthFailed
	}
	if err := a.user.Login(username, password); err != nil {
		return err
	}
	s.acct = a
	s.UserSession = imapmemserver.NewUserSession(a.user)
	return nil
}

func (s *session) Close() error {
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	var su []imap.MailboxAttr
	if options != nil {
		su = options.SpecialUse
	}
	if s.srv.opts.Exchange && len(su) > 0 {
		// A server without CREATE-SPECIAL-USE cannot parse the USE option.
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Command Argument Error. CREATE-SPECIAL-USE is not supported"}
	}
	return s.acct.create(name, su)
}

func (s *session) Delete(name string) error {
	name = canonName(name)
	a := s.acct
	if name == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.folders[name] == nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	}
	for n := range a.folders {
		if strings.HasPrefix(n, name+string(Delimiter)) {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeHasChildren, Text: "Mailbox has children, delete them first"}
		}
	}
	if err := a.user.Delete(name); err != nil {
		return err
	}
	delete(a.folders, name)
	return nil
}

func (s *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	oldName, newName = canonName(oldName), canonName(newName)
	a := s.acct
	if oldName == "INBOX" {
		// RFC 3501 moves INBOX's messages to the new folder; imapmemserver
		// cannot do that and the demo does not need it.
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Renaming INBOX is not supported"}
	}
	if newName == "" || newName == oldName || strings.HasPrefix(newName, oldName+string(Delimiter)) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid new name"}
	}
	a.mu.Lock()
	if a.folders[oldName] == nil {
		a.mu.Unlock()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	}
	if a.folders[newName] != nil {
		a.mu.Unlock()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	}
	var moves []string // old names, parent first
	for n := range a.folders {
		if n == oldName || strings.HasPrefix(n, oldName+string(Delimiter)) {
			moves = append(moves, n)
		}
	}
	sort.Strings(moves)
	a.mu.Unlock()

	// Superiors of the new name.
	if i := strings.LastIndexByte(newName, Delimiter); i > 0 {
		if err := a.create(newName[:i], nil); err != nil && !isAlreadyExists(err) {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range moves {
		to := newName + n[len(oldName):]
		if err := a.user.Rename(n, to, options); err != nil {
			return err
		}
		a.folders[to] = a.folders[n]
		delete(a.folders, n)
	}
	return nil
}

func (s *session) Subscribe(name string) error {
	if err := s.UserSession.Subscribe(canonName(name)); err != nil {
		return err
	}
	s.acct.setSubscribed(name, true)
	return nil
}

func (s *session) Unsubscribe(name string) error {
	if err := s.UserSession.Unsubscribe(canonName(name)); err != nil {
		return err
	}
	s.acct.setSubscribed(name, false)
	return nil
}

// Append enforces ServerOptions.AppendLimit. Returning before reading the
// literal is safe here: imapserver discards the rest of it.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if lim := s.srv.opts.AppendLimit; lim > 0 && r.Size() > lim {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Message too big: %d bytes, limit is %d", r.Size(), lim)}
	}
	if s.srv.opts.Exchange && options != nil {
		if err := checkExchangeFlags(options.Flags); err != nil {
			return nil, err
		}
	}
	// imapmemserver stores whatever arrived when a client dies mid-literal (the
	// literal reader reports a plain EOF); a real server discards the partial
	// message. Read it whole first and refuse a short one.
	var buf bytes.Buffer
	n, err := buf.ReadFrom(r)
	if err != nil {
		return nil, err
	}
	if n != r.Size() {
		return nil, fmt.Errorf("APPEND literal truncated: got %d of %d bytes", n, r.Size())
	}
	if s.throttled {
		time.Sleep(s.srv.opts.StragglerDelay)
	}
	if t := s.srv.opts.Throttle; t != nil {
		if d, ok := t(); ok {
			return nil, s.throttle(d)
		}
	}
	raw := buf.Bytes()
	if s.srv.opts.Exchange {
		raw = Rerender(raw)
	}
	return s.UserSession.Append(canonName(mailbox), &literal{Reader: bytes.NewReader(raw), size: int64(len(raw))}, options)
}

// List answers LIST and LSUB from the folder registry.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: Delimiter})
	}
	a := s.acct
	a.mu.Lock()
	names := make([]string, 0, len(a.folders))
	for n := range a.folders {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "INBOX") != (names[j] == "INBOX") {
			return names[i] == "INBOX"
		}
		return names[i] < names[j]
	})
	var out []imap.ListData
	for i, n := range names {
		if !matchAny(n, ref, patterns) {
			continue
		}
		m := a.folders[n]
		if options.SelectSubscribed && !m.subscribed {
			continue
		}
		if options.SelectSpecialUse && len(m.specialUse) == 0 {
			continue
		}
		d := imap.ListData{Mailbox: n, Delim: Delimiter}
		hasChildren := false
		for _, c := range names[i+1:] {
			if strings.HasPrefix(c, n+string(Delimiter)) {
				hasChildren = true
				break
			}
		}
		if n == "INBOX" {
			for _, c := range names {
				if strings.HasPrefix(c, "INBOX/") {
					hasChildren = true
				}
			}
		}
		if hasChildren {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if m.subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		// RFC 6154: special-use attributes are returned in every LIST
		// (Exchange has none).
		if !s.srv.opts.Exchange {
			d.Attrs = append(d.Attrs, m.specialUse...)
		}
		out = append(out, d)
	}
	a.mu.Unlock()

	for i := range out {
		if options.ReturnStatus != nil {
			st, err := s.UserSession.Status(out[i].Mailbox, options.ReturnStatus)
			if err == nil {
				out[i].Status = st
			}
		}
		if err := w.WriteList(&out[i]); err != nil {
			return err
		}
	}
	return nil
}

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if name == "INBOX" || strings.HasPrefix(name, "INBOX/") {
			// INBOX is case-insensitive.
			if len(p) >= 5 && strings.EqualFold(p[:5], "INBOX") {
				p = "INBOX" + p[5:]
			}
		}
		if imapserver.MatchList(name, Delimiter, ref, p) {
			return true
		}
	}
	return false
}

// Select, Status etc. see canonical names (INBOX/child case-insensitivity).
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := s.UserSession.Select(canonName(name), options)
	if err == nil && s.srv.opts.Exchange {
		data.PermanentFlags = slices.Clone(exchangePermanentFlags)
	}
	return data, err
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	return s.UserSession.Status(canonName(name), options)
}

func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	return s.UserSession.Copy(numSet, canonName(dest))
}

func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return s.UserSession.Move(w, numSet, canonName(dest))
}

// CloseOnDone closes the server when ctx is done (for demos and tests that
// bind a server's lifetime to a context).
func (s *Server) CloseOnDone(ctx context.Context) {
	context.AfterFunc(ctx, func() { _ = s.Close() })
}

// AppendLimit lifts imapserver's built-in 100 MiB APPEND ceiling to what a
// real target allows (Exchange Online: up to 150 MB); ServerOptions.AppendLimit,
// when set, is enforced in Append instead.
func (s *session) AppendLimit() uint32 { return 1<<31 - 1 }

// throttle answers as Exchange Online does when it throttles, and drops
// the connection a moment later (ServerOptions.ThrottleDrop).
func (s *session) throttle(d time.Duration) error {
	s.throttled = true
	// The answer goes out first; then the connection is dropped.
	time.AfterFunc(cmp.Or(s.srv.opts.ThrottleDrop, 50*time.Millisecond), func() { s.conn.NetConn().Close() })
	return &imap.Error{Type: imap.StatusResponseTypeBad,
		Text: fmt.Sprintf("Request is throttled. Suggested Backoff Time: %d milliseconds", d.Milliseconds())}
}

// Fetch answers with ServerOptions.ThrottleFetch's throttling when it
// says so.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if t := s.srv.opts.ThrottleFetch; t != nil {
		if d, ok := t(); ok {
			return s.throttle(d)
		}
	}
	return s.UserSession.Fetch(w, numSet, options)
}
