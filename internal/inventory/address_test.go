package inventory

import (
	"math/rand/v2"
	"net/mail"
	"strings"
	"testing"
)

// netMailBare is the check bareAddress replaces.
func netMailBare(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

var trickyAddresses = []struct {
	in   string
	want bool
}{
	{"a@b.c", true},
	{"olivia.smith12@nhs.net", true},
	{"Olivia.Smith12@NHS.net", true},
	{"a@localhost", true},
	{"a@b", true},
	{"user+tag@example.org", true},
	{"o'brien@example.org", true},
	{"!#$%&'*+-/=?^_`{|}~@example.org", true},
	{"a@b-c.d", true},
	{"a@-b.c", true}, // atext, not a host name: RFC 5322 does not look inside
	{"a@1.2.3.4", true},
	{"a@[1.2.3.4]", true},
	{"a@[::1]", true},
	{"a@[::ffff:1.2.3.4]", true},
	{"jürgen@müller.de", true},
	{"用户@例子.广告", true},
	{"a\uFFFD@b.c", true}, // a real U+FFFD is atext
	{"", false},
	{"@", false},
	{"a", false},
	{"a@", false},
	{"@b.c", false},
	{"a@@b.c", false},
	{"a@b@c", false},
	{".a@b.c", false},
	{"a.@b.c", false},
	{"a..b@c.d", false},
	{"a@.b.c", false},
	{"a@b.c.", false},
	{"a@b..c", false},
	{" a@b.c", false},
	{"a@b.c ", false},
	{"a @b.c", false},
	{"a@ b.c", false},
	{"a@b .c", false},
	{"a\t@b.c", false},
	{"a@b.c\n", false},
	{"a\x00@b.c", false},
	{"a\x7f@b.c", false},
	{`"a"@b.c`, false},
	{`"a b"@c.d`, false},
	{`""@b.c`, false},
	{`"\"@x"@x`, false},
	{"<a@b.c>", false},
	{"A <a@b.c>", false},
	{"a@b.c (A)", false},
	{"(A) a@b.c", false},
	{"a(x)@b.c", false},
	{"g: a@b.c;", false},
	{"a@b.c, d@e.f", false},
	{"a,b@c.d", false},
	{"a;b@c.d", false},
	{"a:b@c.d", false},
	{"a<b@c.d", false},
	{"a>b@c.d", false},
	{"a[b@c.d", false},
	{`a\b@c.d`, false},
	{"a@[1.2.3.4", false},
	{"a@1.2.3.4]", false},
	{"a@[]", false},
	{"a@[1.2.3]", false},
	{"a@[1.2.3.4]x", false},
	{"a@[1.2.3.4]]", false},
	{"a@[[1.2.3.4]]", false},
	{"a@[ 1.2.3.4]", false},
	{"a@[IPv6:::1]", false},
	{"a@[fe80::1%eth0]", false},
	{"a@[example.org]", false},
	{"a@b.c[1.2.3.4]", false},
	{"a\xff@b.c", false},
	{"a@b.c\xff", false},
	{"a@b\xc3", false},
	{"\xed\xa0\x80@b.c", false}, // a UTF-16 surrogate is not UTF-8
	{"=?utf-8?q?a?=@b.c", true},
	{"=?utf-8?q?a?= <a@b.c>", false},
}

func TestBareAddressTable(t *testing.T) {
	for _, tc := range trickyAddresses {
		if got := bareAddress(tc.in); got != tc.want {
			t.Errorf("bareAddress(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if ref := netMailBare(tc.in); ref != tc.want {
			t.Errorf("net/mail check of %q = %v, want %v (the table is wrong)", tc.in, ref, tc.want)
		}
	}
}

// TestBareAddressMatchesNetMail compares the two checks on random strings
// built from the pieces that matter to the grammar.
func TestBareAddressMatchesNetMail(t *testing.T) {
	pieces := []string{"a", "Z", "0", "@", "@", ".", ".", " ", "\t", `"`, `\`, "(", ")", "<", ">", "[", "]",
		":", ";", ",", "'", "+", "-", "_", "~", "é", "\uFFFD", "\xff", "\xc3", "\x00", "\x7f", "1.2.3.4", "::1",
		"%", "example.org", "=?utf-8?q?x?="}
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	agree := map[bool]int{}
	for range 200_000 {
		b.Reset()
		if rng.IntN(2) == 0 { // anything
			for range 1 + rng.IntN(8) {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
		} else { // shaped like local@domain, mostly of harmless pieces
			for _, part := range []string{"local", "@", "domain"} {
				if part == "@" {
					b.WriteString("@")
					continue
				}
				for range 1 + rng.IntN(3) {
					if rng.IntN(3) == 0 {
						b.WriteString(pieces[rng.IntN(len(pieces))])
					} else {
						b.WriteString(pieces[rng.IntN(2)] + ".")
					}
				}
				b.WriteString(pieces[rng.IntN(3)])
			}
		}
		s := b.String()
		got, want := bareAddress(s), netMailBare(s)
		if got != want {
			t.Fatalf("bareAddress(%q) = %v, net/mail says %v", s, got, want)
		}
		agree[want]++
	}
	if agree[true] < 20_000 || agree[false] < 20_000 {
		t.Fatalf("%d accepted and %d refused: the random strings are too one-sided", agree[true], agree[false])
	}
}

func FuzzBareAddress(f *testing.F) {
	for _, tc := range trickyAddresses {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := bareAddress(s), netMailBare(s); got != want {
			t.Fatalf("bareAddress(%q) = %v, net/mail says %v", s, got, want)
		}
	})
}
