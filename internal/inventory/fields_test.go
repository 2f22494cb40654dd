package inventory

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

const fullHeader = "organization,mailbox,source_user,target_user,wave,organization_name\n"

// readers are every way to read an inventory; each must report the same
// problems (CheckFile and Load prefix the file's path).
func readers(t *testing.T, in string) map[string]func() error {
	return map[string]func() error{
		"Parse":      func() error { _, err := Parse(strings.NewReader(in)); return err },
		"Parse/weak": func() error { _, err := weak.parse(strings.NewReader(in)); return err },
		"Check":      func() error { _, err := Check(strings.NewReader(in)); return err },
		"Check/weak": func() error { _, err := weak.check(strings.NewReader(in)); return err },
		"Check/pipe": func() error { _, err := Check(stream{strings.NewReader(in)}); return err },
		"CheckFile":  func() error { _, err := CheckFile(writeFile(t, in)); return err },
		"Load":       func() error { _, err := Load(writeFile(t, in)); return err },
	}
}

func TestRowRulesNameLineAndField(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	cases := []struct {
		name, header, row string
		field, mailbox    string // of the *LineError
		want              string // the whole error text
	}{
		// 1. Field lengths.
		{"10 MB source_user", fullHeader, "RXH,a@b.c," + big + ",t,1,N",
			"source_user", "a@b.c", "line 3: field source_user is 10485760 bytes long, over the limit of 320 bytes"},
		{"mailbox of 321 bytes", fullHeader, "RXH,a@" + strings.Repeat("b", 319) + ",s,t,1,N",
			"mailbox", "", "line 3: field mailbox is 321 bytes long, over the limit of 320 bytes"},
		{"target_user of 321 bytes", fullHeader, "RXH,a@b.c,s," + strings.Repeat("t", 321) + ",1,N",
			"target_user", "a@b.c", "line 3: field target_user is 321 bytes long, over the limit of 320 bytes"},
		{"organization of 257 bytes", fullHeader, strings.Repeat("R", 257) + ",a@b.c,s,t,1,N",
			"organization", "a@b.c", "line 3: field organization is 257 bytes long, over the limit of 256 bytes"},
		{"wave of 257 bytes", fullHeader, "RXH,a@b.c,s,t," + strings.Repeat("1", 257) + ",N",
			"wave", "a@b.c", "line 3: field wave is 257 bytes long, over the limit of 256 bytes"},
		{"organization_name of 10 MB", fullHeader, "RXH,a@b.c,s,t,1," + big,
			"organization_name", "a@b.c", "line 3: field organization_name is 10485760 bytes long, over the limit of 256 bytes"},
		{"length counts UTF-8 bytes", fullHeader, "RXH,a@b.c,s,t,1," + strings.Repeat("é", 129),
			"organization_name", "a@b.c", "line 3: field organization_name is 258 bytes long, over the limit of 256 bytes"},

		// 2. UTF-8 only.
		{"Latin-1 source_user", fullHeader, "RXH,a@b.c,Andr\xe9,t,1,N",
			"source_user", "a@b.c", "line 3: field source_user is not valid UTF-8 (byte 0xE9 at byte 5 of the field); save the inventory as UTF-8"},
		{"Latin-1 organization code", fullHeader, "R\xc9H,a@b.c,s,t,1,N",
			"organization", "a@b.c", "line 3: field organization is not valid UTF-8 (byte 0xC9 at byte 2 of the field); save the inventory as UTF-8"},
		{"truncated sequence in the name", fullHeader, "RXH,a@b.c,s,t,1,Caf\xc3",
			"organization_name", "a@b.c", "line 3: field organization_name is not valid UTF-8 (byte 0xC3 at byte 4 of the field); save the inventory as UTF-8"},
		{"Latin-1 mailbox", fullHeader, "RXH,j\xfcrgen@b.c,s,t,1,N",
			"mailbox", "", "line 3: field mailbox is not valid UTF-8 (byte 0xFC at byte 2 of the field); save the inventory as UTF-8"},
		{"surrogate in target_user", fullHeader, "RXH,a@b.c,s,t\xed\xa0\x80,1,N",
			"target_user", "a@b.c", "line 3: field target_user is not valid UTF-8 (byte 0xED at byte 2 of the field); save the inventory as UTF-8"},
		{"invalid wave", fullHeader, "RXH,a@b.c,s,t,\xff,N",
			"wave", "a@b.c", "line 3: field wave is not valid UTF-8 (byte 0xFF at byte 1 of the field); save the inventory as UTF-8"},

		// 3. Control characters.
		{"NUL in source_user", fullHeader, "RXH,a@b.c,a\x00b,t,1,N",
			"source_user", "a@b.c", "line 3: field source_user has the control character U+0000 at byte 2 of the field"},
		{"NUL in organization code", fullHeader, "RX\x00H,a@b.c,s,t,1,N",
			"organization", "a@b.c", "line 3: field organization has the control character U+0000 at byte 3 of the field"},
		{"tab inside target_user", fullHeader, "RXH,a@b.c,s,t\tu,1,N",
			"target_user", "a@b.c", "line 3: field target_user has the control character U+0009 at byte 2 of the field"},
		{"quoted line break in the name", fullHeader, "RXH,a@b.c,s,t,1,\"Royal\nExample\"",
			"organization_name", "a@b.c", "line 3: field organization_name has the control character U+000A at byte 6 of the field"},
		{"escape in wave", fullHeader, "RXH,a@b.c,s,t,1\x1b[0m,N",
			"wave", "a@b.c", "line 3: field wave has the control character U+001B at byte 2 of the field"},
		{"DEL in source_user", fullHeader, "RXH,a@b.c,s\x7f,t,1,N",
			"source_user", "a@b.c", "line 3: field source_user has the control character U+007F at byte 2 of the field"},
		{"C1 NEL inside the name", fullHeader, "RXH,a@b.c,s,t,1,A\u0085B",
			"organization_name", "a@b.c", "line 3: field organization_name has the control character U+0085 at byte 2 of the field"},
		{"C1 CSI in organization code", fullHeader, "R\u009bH,a@b.c,s,t,1,N",
			"organization", "a@b.c", "line 3: field organization has the control character U+009B at byte 2 of the field"},
		{"C1 in mailbox", fullHeader, "RXH,a\u0080@b.c,s,t,1,N",
			"mailbox", "", "line 3: field mailbox has the control character U+0080 at byte 2 of the field"},

		// 4. Fields against the header.
		{"one field too many", fullHeader, "RXH,a@b.c,s,t,1,N,extra",
			"", "", "line 3: the row has 7 fields, the header has 6"},
		{"an empty field too many", "organization,mailbox,source_user,target_user\n", "RXH,a@b.c,s,t,",
			"", "", "line 3: the row has 5 fields, the header has 4"},
		{"optional field missing", "organization,mailbox,source_user,target_user,wave\n", "RXH,a@b.c,s,t",
			"", "", "line 3: the row has 4 fields, the header has 5"},
		{"required field missing", "organization,mailbox,source_user,target_user\n", "RXH,a@b.c,s",
			"", "", "line 3: the row has 3 fields, the header has 4"},

		// 6. Organization codes make workflow ids.
		{"space in code", fullHeader, "GP 7,a@b.c,s,t,1,N",
			"organization", "a@b.c", `line 3: field organization "GP 7" has ' ' (U+0020) at byte 3: a code is part of workflow ids, so '/', white space and invisible characters are not allowed`},
		{"slash in code", fullHeader, "GP/7,a@b.c,s,t,1,N",
			"organization", "a@b.c", `line 3: field organization "GP/7" has '/' (U+002F) at byte 3: a code is part of workflow ids, so '/', white space and invisible characters are not allowed`},
		{"no-break space in code", fullHeader, "GP\u00a07,a@b.c,s,t,1,N",
			"organization", "a@b.c", `line 3: field organization "GP\u00a07" has '\u00a0' (U+00A0) at byte 3: a code is part of workflow ids, so '/', white space and invisible characters are not allowed`},
		{"zero-width space in code", fullHeader, "GP\u200b7,a@b.c,s,t,1,N",
			"organization", "a@b.c", `line 3: field organization "GP\u200b7" has '\u200b' (U+200B) at byte 3: a code is part of workflow ids, so '/', white space and invisible characters are not allowed`},
		{"bidi override in code", fullHeader, "\u202eHXR,a@b.c,s,t,1,N",
			"organization", "a@b.c", `line 3: field organization "\u202eHXR" has '\u202e' (U+202E) at byte 1: a code is part of workflow ids, so '/', white space and invisible characters are not allowed`},
	}
	for _, c := range cases {
		// A good row first, so the bad one is on line 3.
		good := strings.Join([]string{"GOOD", "first@b.c", "s", "t", "1", "N"}[:strings.Count(c.header, ",")+1], ",")
		in := c.header + good + "\n" + c.row + "\n"
		for name, read := range readers(t, in) {
			err := read()
			les := lineErrors(t, err)
			if len(les) != 1 || les[0].Line != 3 || les[0].Field != c.field || les[0].Mailbox != c.mailbox {
				t.Errorf("%s: %s: got %d problems, the first %+v; want line 3, field %q, mailbox %q", c.name, name, len(les), *les[0], c.field, c.mailbox)
			}
			if got := err.Error(); got != c.want && !strings.HasSuffix(got, ": "+c.want) {
				t.Errorf("%s: %s:\n got %.300q\nwant %q", c.name, name, got, c.want)
			}
		}
	}
}

func TestFieldNamesAreTheColumns(t *testing.T) {
	if !slices.Equal(fieldNames[:], slices.Concat(Required, Optional)) {
		t.Fatalf("fieldNames %q, columns %q then %q", fieldNames, Required, Optional)
	}
}

func TestRowRulesAcceptGoodValues(t *testing.T) {
	rows := []string{
		strings.Repeat("R", 256) + ",a@" + strings.Repeat("b", 318) + "," + strings.Repeat("s", 320) + "," + strings.Repeat("t", 320) + "," + strings.Repeat("1", 256) + "," + strings.Repeat("N", 256),
		"RXH,jürgen@müller.de,Jürgen,jürgen@cloud.example,1,\"Dr Müller, Praxis\"",
		"R.X-H_1,b@b.c,André,t3,1,Café 🙂",
		"用户,c@b.c,s\uFFFD,t4,1,N",     // a real U+FFFD is valid UTF-8
		" RXH\t, d@b.c ,s\t,t5,1, N ", // leading and trailing white space is trimmed first
	}
	in := fullHeader + strings.Join(rows, "\n") + "\n"
	inv, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatalf("Parse: %.400v", err)
	}
	sum, err := Check(strings.NewReader(in))
	if err != nil {
		t.Fatalf("Check: %.400v", err)
	}
	if inv.Mailboxes() != len(rows) || sum.Mailboxes != len(rows) || len(inv.Orgs) != 4 || len(sum.Orgs) != 4 {
		t.Fatalf("Parse %d mailboxes in %d organizations, Check %d in %d", inv.Mailboxes(), len(inv.Orgs), sum.Mailboxes, len(sum.Orgs))
	}
	if r := inv.Orgs[1].Rows[1]; r.Organization != "RXH" || r.Mailbox != "d@b.c" || r.SourceUser != "s" || r.OrgName != "N" {
		t.Fatalf("trimmed row = %+v", r)
	}
}

// A file with every kind of problem: Parse and Check report the same text,
// the refused rows are not counted, and the good rows around them are read.
func TestCheckAndParseAgreeOnRowRules(t *testing.T) {
	in := fullHeader +
		"RXH,a@b.c,s,t2,1,N\n" + // 2
		"RXH,b@b.c,s\x00,t3,2,N\n" + // 3: refused before its wave can conflict
		"RXH,c@b.c,s,t4,1,N,extra\n" + // 4
		"R\xe9H,d@b.c,s,t5,1,N\n" + // 5
		"RXH,e@b.c,s,t6,1," + strings.Repeat("n", 300) + "\n" + // 6
		"R H,f@b.c,s,t7,1,N\n" + // 7
		"RXH,A@b.c,s,t8,1,N\n" + // 8: a duplicate is still found
		"RXH,b@b.c,s,t9,1,N\n" + // 9: line 3 was refused, so this is no duplicate
		"RXH,g@b.c,s,t10\n" // 10
	want := strings.Join([]string{
		"line 3: field source_user has the control character U+0000 at byte 2 of the field",
		"line 4: the row has 7 fields, the header has 6",
		"line 5: field organization is not valid UTF-8 (byte 0xE9 at byte 2 of the field); save the inventory as UTF-8",
		"line 6: field organization_name is 300 bytes long, over the limit of 256 bytes",
		`line 7: field organization "R H" has ' ' (U+0020) at byte 2: a code is part of workflow ids, so '/', white space and invisible characters are not allowed`,
		"line 8: mailbox A@b.c is listed twice (first on line 2)",
		"line 10: the row has 4 fields, the header has 6",
	}, "\n")
	for name, read := range readers(t, in) {
		if err := read(); err == nil || !strings.HasSuffix(err.Error(), want) || len(err.Error()) > len(want)+200 {
			t.Errorf("%s:\n got %v\nwant %s", name, err, want)
		}
	}
}

// The row rules cost no allocation: checking a good row is a scan of its
// bytes.
func TestCheckFieldsDoesNotAllocate(t *testing.T) {
	row := Row{Line: 2, Organization: "RXH", Mailbox: "olivia.smith12@nhs.net", SourceUser: "olivia.smith12",
		TargetUser: "olivia.smith12@nhs.example", Wave: "3", OrgName: "Royal Example Hospital, Site Müller"}
	if n := testing.AllocsPerRun(100, func() {
		if row.checkFields() != nil || row.validate() != nil {
			panic("refused")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per good row", n)
	}
}

func BenchmarkCheckFields(b *testing.B) {
	row := Row{Line: 2, Organization: "RXH", Mailbox: "olivia.smith12@nhs.net", SourceUser: "olivia.smith12",
		TargetUser: "olivia.smith12@nhs.example", Wave: "3", OrgName: "Royal Example Hospital"}
	b.ReportAllocs()
	for b.Loop() {
		if row.checkFields() != nil {
			b.Fatal("refused")
		}
	}
}

// fieldProblem and codeProblem against the rules written plainly, for every
// byte and every character.
func TestFieldAndCodeProblemOnEveryCharacter(t *testing.T) {
	for b := range 256 {
		s := "a" + string([]byte{byte(b)})
		p := fieldProblem(s, 10)
		switch {
		case b < 0x20 || b == 0x7f:
			if p != (problem{kind: fieldControl, at: 1, r: rune(b)}) {
				t.Errorf("byte %#x: %+v", b, p)
			}
		case b >= 0x80:
			if p != (problem{kind: fieldNotUTF8, at: 1}) {
				t.Errorf("byte %#x: %+v", b, p)
			}
		case p.kind != fieldOK:
			t.Errorf("byte %#x: %+v", b, p)
		}
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if 0xd800 <= r && r <= 0xdfff {
			continue // surrogates do not encode
		}
		s := string(r)
		control := r < 0x20 || 0x7f <= r && r <= 0x9f
		if p := fieldProblem(s, 10); control != (p.kind == fieldControl) || !control && p.kind != fieldOK {
			t.Fatalf("%U: %+v", r, p)
		}
		if control {
			continue
		}
		refused := r == '/' || r == ' ' || !unicode.IsPrint(r)
		if c, at := codeProblem(s); refused != (at == 0) || refused && c != r {
			t.Fatalf("%U in a code: refused at %d, want refused %v", r, at, refused)
		}
	}
}

// fieldProblemPlain is fieldProblem without its fast paths.
func fieldProblemPlain(v string, limit int) problem {
	if len(v) > limit {
		return problem{kind: fieldTooLong}
	}
	for i, r := range v {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(v[i:], "\uFFFD"):
			return problem{kind: fieldNotUTF8, at: i}
		case r < 0x20 || 0x7f <= r && r <= 0x9f:
			return problem{kind: fieldControl, at: i, r: r}
		}
	}
	return problem{}
}

// fieldProblem's one-comparison test for printable ASCII misses no byte, at
// any offset, next to any neighbour, and agrees with the plain rules on
// random mixtures.
func TestFieldProblemFastPath(t *testing.T) {
	for _, fill := range []byte{' ', 'a', '~'} {
		for b := range 256 {
			for pos := range 17 {
				v := []byte(strings.Repeat(string(fill), 17))
				v[pos] = byte(b)
				if got, want := fieldProblem(string(v), 100), fieldProblemPlain(string(v), 100); got != want {
					t.Fatalf("%q: %+v, want %+v", v, got, want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"\x00", "\x1f", " ", "!", "a", "~", "\x7f", "\x80", "\xc3", "\xa9", "é", "\u0085", "\uFFFD", "用", "\xff", "\xed\xa0\x80"}
	for range 200_000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		if got, want := fieldProblem(b.String(), 1000), fieldProblemPlain(b.String(), 1000); got != want {
			t.Fatalf("%q: %+v, want %+v", b.String(), got, want)
		}
	}
}
