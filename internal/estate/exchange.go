package estate

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// ExchangeAppendLimit is the APPEND ceiling of Exchange Online's IMAP
// endpoint (imapsync's Office 365 preset), the default AppendLimit of an
// Exchange server.
const ExchangeAppendLimit = 45_000_000

// ExchangeCapabilities are what an Exchange server advertises: those of
// Capabilities(false) without SPECIAL-USE and CREATE-SPECIAL-USE, which
// Exchange Online does not offer.
func ExchangeCapabilities() imap.CapSet {
	caps := Capabilities(false)
	delete(caps, imap.CapSpecialUse)
	delete(caps, imap.CapCreateSpecialUse)
	return caps
}

// Exchange folder roles, the keys of ExchangeFolders.
const (
	RoleSent    = "sent"
	RoleTrash   = "trash"
	RoleDrafts  = "drafts"
	RoleJunk    = "junk"
	RoleArchive = "archive"
	RoleOutbox  = "outbox"
)

// exchangeFolders are the well-known folders (besides INBOX) a new Exchange
// Online mailbox has, by mailbox language. "Conversation History" has no
// role.
var exchangeFolders = map[string]struct {
	roles        map[string]string
	conversation string
}{
	"en": {map[string]string{
		RoleSent: "Sent Items", RoleTrash: "Deleted Items", RoleDrafts: "Drafts",
		RoleJunk: "Junk Email", RoleArchive: "Archive", RoleOutbox: "Outbox",
	}, "Conversation History"},
	"de": {map[string]string{
		RoleSent: "Gesendete Elemente", RoleTrash: "Gelöschte Elemente", RoleDrafts: "Entwürfe",
		RoleJunk: "Junk-E-Mail", RoleArchive: "Archiv", RoleOutbox: "Postausgang",
	}, "Unterhaltungsverlauf"},
}

// ExchangeFolders returns the names (UTF-8, as a client sees them after
// decoding modified UTF-7) of Exchange Online's well-known folders in a
// mailbox of language lang ("en" or "de"; anything else is "en"), by role:
// RoleSent, RoleTrash, RoleDrafts, RoleJunk, RoleArchive, RoleOutbox.
func ExchangeFolders(lang string) map[string]string {
	f, ok := exchangeFolders[lang]
	if !ok {
		f = exchangeFolders["en"]
	}
	out := make(map[string]string, len(f.roles))
	for k, v := range f.roles {
		out[k] = v
	}
	return out
}

// exchangeFolderNames are all the folders besides INBOX a new mailbox of
// lang has, sorted.
func exchangeFolderNames(lang string) []string {
	f, ok := exchangeFolders[lang]
	if !ok {
		f = exchangeFolders["en"]
	}
	names := []string{f.conversation}
	for _, v := range f.roles {
		names = append(names, v)
	}
	slices.Sort(names)
	return names
}

// createExchangeFolders gives a new account its well-known folders
// (subscribed, without special-use attributes: Exchange has none).
func (s *Server) createExchangeFolders(a *account, user string) error {
	lang := "en"
	if s.opts.Language != nil {
		lang = s.opts.Language(user)
	}
	for _, n := range exchangeFolderNames(lang) {
		if err := a.create(n, nil); err != nil && !isAlreadyExists(err) {
			return err
		}
		a.folders[n].subscribed = true
	}
	return nil
}

// exchangePermanentFlags are the flags Exchange Online stores.
var exchangePermanentFlags = []imap.Flag{
	imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, imap.FlagMDNSent,
}

// exchangeFlagAllowed: Exchange Online stores only the system flags and
// $MDNSent.
func exchangeFlagAllowed(f imap.Flag) bool {
	for _, p := range exchangePermanentFlags {
		if strings.EqualFold(string(f), string(p)) {
			return true
		}
	}
	return false
}

// errExchangeKeyword is Exchange Online's answer to a custom keyword.
func errExchangeKeyword() error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Command Argument Error. 11"}
}

func checkExchangeFlags(flags []imap.Flag) error {
	for _, f := range flags {
		if !exchangeFlagAllowed(f) {
			return errExchangeKeyword()
		}
	}
	return nil
}

// Store refuses, on an Exchange server, to add or set a keyword Exchange
// cannot store.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	if s.srv.opts.Exchange && flags != nil && flags.Op != imap.StoreFlagsDel {
		if err := checkExchangeFlags(flags.Flags); err != nil {
			return err
		}
	}
	return s.UserSession.Store(w, numSet, flags, options)
}

// rerenderFoldWidth is where Rerender folds header fields (go-message and
// most clients fold at 76 or 78).
const rerenderFoldWidth = 70

// Rerender returns msg rendered again the way Exchange Online renders a
// stored message when it is fetched: the same content (decoded parts,
// Subject, Message-ID) in other bytes and another size.
//
//   - Header fields are sorted by name (fields of the same name, such as
//     Received, keep their order), unfolded and folded again at 70 columns,
//     and "X-MS-Exchange-Organization-AuthAs: Internal" is added.
//   - Multipart boundaries are replaced by new ones; preambles and epilogues
//     are dropped.
//   - text/* leaf parts are re-encoded quoted-printable, all other leaf parts
//     (message/rfc822 included) base64 wrapped at 76 columns.
//   - Lines end in CRLF.
//
// A message without Message-ID does not get one. If the body's MIME cannot
// be parsed (bad boundary, unknown transfer encoding, undecodable content),
// only the header is re-rendered and the body kept as is; if the header
// cannot be parsed, msg is returned unchanged.
func Rerender(msg []byte) []byte {
	rd := bytes.NewReader(msg)
	br := bufio.NewReader(rd)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return msg
	}
	body := msg[len(msg)-rd.Len()-br.Buffered():]
	h.Add("X-MS-Exchange-Organization-AuthAs", "Internal")

	var out bytes.Buffer
	if err := rerenderEntity(&out, h.Copy(), body, true); err == nil {
		return out.Bytes()
	}
	out.Reset()
	writeSortedHeader(&out, h)
	out.Write(body)
	return out.Bytes()
}

// rerenderEntity writes the entity with header h and raw body body to w,
// re-encoded.
func rerenderEntity(w *bytes.Buffer, h textproto.Header, body []byte, top bool) error {
	mediaType, params := "text/plain", map[string]string{}
	if ct := h.Get("Content-Type"); strings.TrimSpace(ct) != "" {
		var err error
		if mediaType, params, err = mime.ParseMediaType(ct); err != nil {
			return err
		}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" {
			return fmt.Errorf("multipart without boundary")
		}
		params["boundary"] = newBoundary()
		ct := mime.FormatMediaType(mediaType, params)
		if ct == "" {
			return fmt.Errorf("cannot format Content-Type")
		}
		h.Set("Content-Type", ct)
		writeSortedHeader(w, h)
		mr := textproto.NewMultipartReader(bytes.NewReader(body), boundary)
		n := 0
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			raw, err := io.ReadAll(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "--%s\r\n", params["boundary"])
			if err := rerenderEntity(w, p.Header, raw, false); err != nil {
				return err
			}
			w.WriteString("\r\n")
			n++
		}
		if n == 0 {
			return fmt.Errorf("multipart without parts")
		}
		fmt.Fprintf(w, "--%s--\r\n", params["boundary"])
		return nil
	}

	var dec io.Reader = bytes.NewReader(body)
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); enc {
	case "", "7bit", "8bit", "binary":
	case "base64":
		dec = base64.NewDecoder(base64.StdEncoding, newlineStripper{bytes.NewReader(body)})
	case "quoted-printable":
		dec = quotedprintable.NewReader(dec)
	default:
		return fmt.Errorf("unknown transfer encoding %q", enc)
	}
	content, err := io.ReadAll(dec)
	if err != nil {
		return err
	}
	if top && !h.Has("Mime-Version") {
		h.Set("MIME-Version", "1.0")
	}
	if strings.HasPrefix(strings.ToLower(mediaType), "text/") {
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		writeSortedHeader(w, h)
		qp := quotedprintable.NewWriter(w)
		qp.Write(content)
		qp.Close()
		return nil
	}
	h.Set("Content-Transfer-Encoding", "base64")
	writeSortedHeader(w, h)
	enc := base64.StdEncoding.EncodeToString(content)
	for len(enc) > 76 {
		w.WriteString(enc[:76])
		w.WriteString("\r\n")
		enc = enc[76:]
	}
	w.WriteString(enc)
	return nil
}

// newlineStripper drops whitespace from a base64 body.
type newlineStripper struct{ r io.Reader }

func (s newlineStripper) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, b := range p[:n] {
			if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

func newBoundary() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "_000_EXO" + hex.EncodeToString(b[:]) + "_"
}

// headerSpelling is how Exchange spells the fields Rerender sets (parsed
// fields keep the spelling they arrived with).
var headerSpelling = map[string]string{
	"Mime-Version":                      "MIME-Version",
	"Message-Id":                        "Message-ID",
	"X-Ms-Exchange-Organization-Authas": "X-MS-Exchange-Organization-AuthAs",
}

// writeSortedHeader writes h's fields sorted by name (stable, so fields of
// one name keep their order), each unfolded and folded again at
// rerenderFoldWidth, and the blank line.
func writeSortedHeader(w *bytes.Buffer, h textproto.Header) {
	type field struct{ k, v string }
	var fs []field
	for it := h.Fields(); it.Next(); {
		k := it.Key()
		if raw, err := it.Raw(); err == nil {
			if i := bytes.IndexByte(raw, ':'); i > 0 && strings.EqualFold(strings.TrimSpace(string(raw[:i])), k) {
				k = strings.TrimSpace(string(raw[:i]))
			}
		}
		if sp, ok := headerSpelling[k]; ok {
			k = sp
		}
		fs = append(fs, field{k, it.Value()})
	}
	slices.SortStableFunc(fs, func(a, b field) int {
		return strings.Compare(strings.ToLower(a.k), strings.ToLower(b.k))
	})
	for _, f := range fs {
		w.WriteString(foldField(f.k, f.v, rerenderFoldWidth))
	}
	w.WriteString("\r\n")
}

// foldField formats "k: v" with CRLF, folded at whitespace so that lines
// stay within width where the value allows it (a word is never split).
func foldField(k, v string, width int) string {
	var b strings.Builder
	b.WriteString(k)
	b.WriteString(":")
	line := len(k) + 1
	for i, word := range strings.Split(v, " ") {
		if i > 0 && word != "" && line+1+len(word) > width {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteByte(' ')
		b.WriteString(word)
		line += 1 + len(word)
	}
	b.WriteString("\r\n")
	return b.String()
}

// exchangeRoles are the Exchange roles of the special uses a source folder
// can have.
var exchangeRoles = map[imap.MailboxAttr]string{
	imap.MailboxAttrSent:    RoleSent,
	imap.MailboxAttrDrafts:  RoleDrafts,
	imap.MailboxAttrTrash:   RoleTrash,
	imap.MailboxAttrJunk:    RoleJunk,
	imap.MailboxAttrArchive: RoleArchive,
}

// ExchangeFolderMap is a VerifyOptions.MapFolder for a copy of mb to an
// Exchange target whose mailbox has language lang (see ExchangeFolders): a
// source folder with a special use (Folder.SpecialUse \Sent, \Drafts,
// \Trash, \Junk, \Archive) maps to Exchange's folder of that role, and a
// folder inside one goes with it ("Archive/2023" to "Archiv/2023" in
// German, as mailshift plans it); every other folder maps to itself. Use
// it per mailbox through VerifyOptions.MapFolderFor.
func ExchangeFolderMap(mb *Mailbox, lang string) func(src string) string {
	names := ExchangeFolders(lang)
	m := map[string]string{}
	for _, f := range mb.Folders {
		if role, ok := exchangeRoles[f.SpecialUse]; ok && normalize(f.Name, '/') != "INBOX" {
			m[normalize(f.Name, '/')] = names[role]
		}
	}
	return func(src string) string {
		if t, ok := m[src]; ok {
			return t
		}
		// The nearest special-use superior.
		for i := strings.LastIndexByte(src, '/'); i > 0; i = strings.LastIndexByte(src[:i], '/') {
			if t, ok := m[src[:i]]; ok {
				return t + src[i:]
			}
		}
		return src
	}
}
