package inventory

import (
	"net"
	"strings"
	"unicode/utf8"
)

// bareAddress reports whether s is a bare e-mail address: exactly the
// strings for which net/mail.ParseAddress(s) succeeds with Address == s,
// without the allocations of a general RFC 5322 parser.
//
// Such a string is local "@" domain, where local is a dot-atom and domain a
// dot-atom or a domain literal holding an IP address. Nothing else survives
// ParseAddress unchanged: a quoted local part loses its quotes, a display
// name, angle brackets, comments and folding white space are all dropped
// from Address. A dot-atom is one or more atext characters (printable ASCII
// other than the specials ()<>[]:;@\," and space, or any non-ASCII
// character, RFC 6532) with no leading, trailing or doubled dot; invalid
// UTF-8 is refused.
func bareAddress(s string) bool {
	at := strings.IndexByte(s, '@') // '@' is not atext, so the first one splits
	if at < 0 || !dotAtom(s[:at]) {
		return false
	}
	d := s[at+1:]
	if len(d) > 0 && d[0] == '[' {
		return domainLiteral(d)
	}
	return dotAtom(d)
}

// atext marks the ASCII atext characters, '.' included.
var atext = func() (t [utf8.RuneSelf]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = !strings.ContainsRune(`()<>[]:;@\,"`, c)
	}
	return t
}()

func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			i += n
			continue
		}
		if !atext[c] || c == '.' && s[i+1] == '.' {
			return false
		}
		i++
	}
	return true
}

// domainLiteral reports whether s is "[" dtext "]" with an IP address
// inside. net.ParseIP accepts only hex digits, '.' and ':', all of them
// dtext, so the IP check is also the dtext check.
func domainLiteral(s string) bool {
	return len(s) >= 2 && s[len(s)-1] == ']' && net.ParseIP(s[1:len(s)-1]) != nil
}
