// Package transfer moves one mailbox from a source IMAP connection to a
// target IMAP connection: folder by folder, streamed message by message,
// resumable from a checkpoint and safe against duplicates after a crash.
package transfer

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/imapconn"
)

// FolderPlan pairs a source folder with the target folder it lands in.
type FolderPlan struct {
	Source   string
	Target   string
	NoSelect bool // exists only as a parent; created on the target, not read
}

// FolderRules filter and rename folders. The zero value copies everything,
// maps special-use folders to the target's own, and keeps other names.
type FolderRules struct {
	// Map renames source folders (by "/"-joined path) to target paths, e.g.
	// "Sent Messages" -> "Sent Items". It wins over special-use mapping.
	Map map[string]string
	// Exclude drops folders whose "/"-joined path equals an entry or starts
	// with it followed by "/".
	Exclude []string
	// WellKnown names the target's own folders by special use, for a target
	// that does not mark them (Exchange Online has no SPECIAL-USE, and
	// names them in the mailbox's language). A source folder lands in one
	// by its special use or, without one, by its usual name (UsualRole).
	WellKnown map[imap.MailboxAttr]string `json:",omitempty"`
}

// Plan maps the source tree onto the target. Both sides' delimiters are
// honoured; a delimiter character inside a source name component that the
// target would read as a separator is replaced with "_" so the mapping stays
// one folder to one folder.
func Plan(src, tgt []imapconn.Folder, srcDelim, tgtDelim rune, rules FolderRules) ([]FolderPlan, error) {
	special := map[imap.MailboxAttr]string{}
	for _, f := range tgt {
		if f.SpecialUse != "" && !f.NoSelect {
			if _, dup := special[f.SpecialUse]; !dup {
				special[f.SpecialUse] = f.Name
			}
		}
	}
	pathOf := func(f imapconn.Folder) []string {
		if len(f.Path) == 0 {
			return []string{f.Name}
		}
		return f.Path
	}
	// Folders inside one that goes to a well-known folder go with it
	// ("Archive/2023" into "Archiv/2023"), so a tree is not split between
	// the source's name and the target's.
	wellKnown := map[string]string{}
	for _, f := range src {
		path := pathOf(f)
		if name := rules.WellKnown[roleOf(f, path)]; name != "" && !strings.EqualFold(f.Name, "INBOX") {
			wellKnown[strings.Join(path, "/")] = name
		}
	}
	var out []FolderPlan
	seen := map[string]string{}
	for _, f := range src {
		path := pathOf(f)
		joined := strings.Join(path, "/")
		if excluded(joined, rules.Exclude) {
			continue
		}
		var target string
		switch {
		case rules.Map[joined] != "":
			target = joinPath(strings.Split(rules.Map[joined], "/"), tgtDelim)
		case strings.EqualFold(f.Name, "INBOX"):
			target = "INBOX"
		case f.SpecialUse != "" && special[f.SpecialUse] != "":
			target = special[f.SpecialUse]
		case rules.WellKnown[roleOf(f, path)] != "":
			target = joinPath(strings.Split(rules.WellKnown[roleOf(f, path)], "/"), tgtDelim)
		default:
			target = joinPath(path, tgtDelim)
			for i := len(path) - 1; i > 0; i-- {
				if name := wellKnown[strings.Join(path[:i], "/")]; name != "" {
					target = joinPath(append(strings.Split(name, "/"), path[i:]...), tgtDelim)
					break
				}
			}
		}
		if prev, dup := seen[strings.ToLower(target)]; dup {
			return nil, fmt.Errorf("folders %q and %q would both land in target folder %q; add a folder mapping", prev, f.Name, target)
		}
		seen[strings.ToLower(target)] = f.Name
		out = append(out, FolderPlan{Source: f.Name, Target: target, NoSelect: f.NoSelect})
	}
	// Parents first, so CREATE never depends on the server creating them implicitly.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out, nil
}

// roleOf is a source folder's special use, or the one its name usually
// stands for.
func roleOf(f imapconn.Folder, path []string) imap.MailboxAttr {
	if f.SpecialUse != "" {
		return f.SpecialUse
	}
	return UsualRole(path)
}

// usualNames are the names clients give special-use folders on servers
// that do not mark them, lower-cased: what imapsync's --automap and
// Thunderbird, Outlook and Apple Mail create, in the languages mailshift
// knows Exchange's names in.
var usualNames = map[string]imap.MailboxAttr{
	"sent": imap.MailboxAttrSent, "sent items": imap.MailboxAttrSent, "sent messages": imap.MailboxAttrSent,
	"sent mail": imap.MailboxAttrSent, "gesendet": imap.MailboxAttrSent, "gesendete elemente": imap.MailboxAttrSent,
	"gesendete objekte": imap.MailboxAttrSent, "envoyés": imap.MailboxAttrSent, "éléments envoyés": imap.MailboxAttrSent,
	"enviados": imap.MailboxAttrSent, "elementos enviados": imap.MailboxAttrSent, "verzonden": imap.MailboxAttrSent,
	"verzonden items": imap.MailboxAttrSent,
	"trash":           imap.MailboxAttrTrash, "deleted items": imap.MailboxAttrTrash, "deleted messages": imap.MailboxAttrTrash,
	"bin": imap.MailboxAttrTrash, "papierkorb": imap.MailboxAttrTrash, "gelöschte elemente": imap.MailboxAttrTrash,
	"gelöschte objekte": imap.MailboxAttrTrash, "corbeille": imap.MailboxAttrTrash, "éléments supprimés": imap.MailboxAttrTrash,
	"papelera": imap.MailboxAttrTrash, "elementos eliminados": imap.MailboxAttrTrash, "prullenbak": imap.MailboxAttrTrash,
	"verwijderde items": imap.MailboxAttrTrash,
	"drafts":            imap.MailboxAttrDrafts, "entwürfe": imap.MailboxAttrDrafts, "brouillons": imap.MailboxAttrDrafts,
	"borradores": imap.MailboxAttrDrafts, "concepten": imap.MailboxAttrDrafts,
	"junk": imap.MailboxAttrJunk, "spam": imap.MailboxAttrJunk, "junk email": imap.MailboxAttrJunk,
	"junk e-mail": imap.MailboxAttrJunk, "bulk mail": imap.MailboxAttrJunk, "junk-e-mail": imap.MailboxAttrJunk,
	"courrier indésirable": imap.MailboxAttrJunk, "correo no deseado": imap.MailboxAttrJunk, "ongewenste e-mail": imap.MailboxAttrJunk,
	"archive": imap.MailboxAttrArchive, "archives": imap.MailboxAttrArchive, "archiv": imap.MailboxAttrArchive,
	"archivo": imap.MailboxAttrArchive, "archief": imap.MailboxAttrArchive,
}

// UsualRole is the special use a folder's name usually stands for: a
// top-level folder, or a child of INBOX (servers with INBOX as the root of
// the hierarchy), named like one ("Sent Messages", "Spam", "Papierkorb").
func UsualRole(path []string) imap.MailboxAttr {
	switch {
	case len(path) == 1:
	case len(path) == 2 && strings.EqualFold(path[0], "INBOX"):
		path = path[1:]
	default:
		return ""
	}
	return usualNames[strings.ToLower(path[0])]
}

func excluded(path string, rules []string) bool {
	for _, r := range rules {
		r = strings.Trim(r, "/")
		if path == r || strings.HasPrefix(path, r+"/") {
			return true
		}
	}
	return false
}

func joinPath(path []string, delim rune) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = strings.ReplaceAll(p, string(delim), "_")
	}
	return strings.Join(parts, string(delim))
}

// parents returns every proper ancestor of a target folder name.
func parents(name string, delim rune) []string {
	parts := strings.Split(name, string(delim))
	var out []string
	for i := 1; i < len(parts); i++ {
		out = append(out, strings.Join(parts[:i], string(delim)))
	}
	return out
}

// \Recent is session state owned by the server; it is never copied.
const flagRecent = `\Recent`
