package inventory

import (
	"fmt"
	"github.com/mailshift/mailshift/internal/procstat"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/inventory/inventorytest"
)

// lineErrors unpacks the problems an error reports.
func lineErrors(t *testing.T, err error) []*LineError {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var out []*LineError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *LineError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// stream hides every method but Read, as a pipe or network body would.
type stream struct{ io.Reader }

// weak collides on purpose: addresses of the same length share a hash.
var weak = checker{hash: func(b []byte) uint64 { return uint64(len(b) % 5) }, batch: 2}

func TestCheckNamesLineFieldAndMailbox(t *testing.T) {
	in := "organization,mailbox,source_user,target_user,wave\n" +
		"RXH,a@rxh.example,a,a@cloud,\n" + // 2
		"RXH,b@rxh.example,b,b@cloud,1\n" + // 3: gives RXH its wave
		",c@x.example,c,c,\n" + // 4
		"GP 7,d@x.example,d,d,\n" + // 5
		"GP7,,e,e,\n" + // 6
		"GP7,f@x.example,,f,\n" + // 7
		"GP7,Fred <f@x.example>,f,f,\n" + // 8
		"RXH,g@rxh.example,g,g,2\n" + // 9
		"GP7,B@RXH.example,b,b,\n" + // 10
		"GP7,h\"@x.example,h,h,\n" + // 11
		"G\"P7,j@x.example,j,j,\n" + // 12
		"GP7,i@x.example,i,i,\n"
	want := []string{
		"4 organization c@x.example 0", "5 organization d@x.example 0", "6 mailbox  0", "7 source_user f@x.example 0",
		"8 mailbox Fred <f@x.example> 0", "9 wave g@rxh.example 3", "10 mailbox B@RXH.example 3", "11   0", "12   0",
	}
	wantText := []string{
		"line 8: field mailbox \"Fred <f@x.example>\" is not a bare e-mail address",
		"line 9: organization RXH: wave \"2\" conflicts with wave \"1\" on line 3",
		"line 10: mailbox B@RXH.example is listed twice (first on line 3)",
	}
	for name, read := range map[string]func() error{
		"Parse":      func() error { _, err := Parse(strings.NewReader(in)); return err },
		"Check":      func() error { _, err := Check(strings.NewReader(in)); return err },
		"Check/weak": func() error { _, err := weak.check(strings.NewReader(in)); return err },
		"Check/pipe": func() error { _, err := Check(stream{strings.NewReader(in)}); return err },
		"Parse/weak": func() error { _, err := weak.parse(strings.NewReader(in)); return err },
		"Check/file": func() error { _, err := CheckFile(writeFile(t, in)); return err },
		"Load":       func() error { _, err := Load(writeFile(t, in)); return err },
	} {
		err := read()
		var got []string
		for _, le := range lineErrors(t, err) {
			got = append(got, fmt.Sprintf("%d %s %s %d", le.Line, le.Field, le.Mailbox, le.Other))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: problems\n %q\nwant\n %q", name, got, want)
		}
		for _, w := range wantText {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not say %q:\n%v", name, w, err)
			}
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inventory.csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckConfirmsDuplicatesOnEveryKindOfInput(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where a stream's copy goes
	in := "organization,mailbox,source_user,target_user\nX,a@b.c,s,t1\nX,b@b.c,s,t2\nY,A@b.c,s,t3\n"
	const want = "line 4: mailbox A@b.c is listed twice (first on line 2)"
	pipe := func() io.Reader {
		pr, pw := io.Pipe()
		go func() {
			_, err := io.WriteString(pw, in)
			pw.CloseWithError(err)
		}()
		return pr
	}
	for name, r := range map[string]io.Reader{
		"strings.Reader": strings.NewReader(in),
		"stream":         stream{strings.NewReader(in)},
		"io.Pipe":        pipe(),
	} {
		_, err := Check(r)
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
	if _, err := CheckFile(writeFile(t, in)); err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("CheckFile: got %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
	// A reader positioned after some other content is read again from there.
	r := strings.NewReader("preamble\n" + in)
	io.CopyN(io.Discard, r, int64(len("preamble\n")))
	if _, err := Check(r); err == nil || err.Error() != want {
		t.Errorf("after a preamble: got %v", err)
	}
}

func TestCheckHashCollisionsAreNotDuplicates(t *testing.T) {
	var b strings.Builder
	b.WriteString("organization,mailbox,source_user,target_user\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "ORG%d,user%d@example.org,u,t%d\n", i%7, i, i)
	}
	clean := b.String()
	sum, err := weak.check(strings.NewReader(clean))
	if err != nil || sum.Mailboxes != 2000 || len(sum.Orgs) != 7 {
		t.Fatalf("distinct addresses that share hashes: %+v, %v", sum, err)
	}
	if _, err := weak.parse(stream{strings.NewReader(clean)}); err != nil {
		t.Fatalf("Parse with shared hashes: %v", err)
	}
	// True duplicates among them are still found, across batches of hashes.
	dups := clean + "ORG9,USER1500@example.org,u,d1\nORG9,user7@Example.org,u,d2\nORG9,user1500@example.ORG,u,d3\n"
	want := []string{"2002 1502", "2003 9", "2004 1502"}
	for name, read := range map[string]func() error{
		"Check": func() error { _, err := weak.check(stream{strings.NewReader(dups)}); return err },
		"Parse": func() error { _, err := weak.parse(strings.NewReader(dups)); return err },
	} {
		var got []string
		for _, le := range lineErrors(t, read()) {
			got = append(got, fmt.Sprintf("%d %d", le.Line, le.Other))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: duplicates %q, want %q", name, got, want)
		}
	}
}

func TestCheckStopsAfter50Problems(t *testing.T) {
	var b strings.Builder
	b.WriteString("organization,mailbox,source_user,target_user\n")
	for range 200 {
		b.WriteString("X,not-an-address,s,t\n")
	}
	_, err := Check(strings.NewReader(b.String()))
	if n := len(lineErrors(t, err)); n != maxErrors || !strings.HasSuffix(err.Error(), "stopped after 50 problems") {
		t.Fatalf("%d problems reported, error ends %q", n, err.Error()[max(0, len(err.Error())-60):])
	}
}

// heapBound is the most heap a check of 2.1 million rows may use: 8 bytes
// a mailbox (17 MB) while the hash slice grows, the organizations and the
// garbage of a streaming CSV reader. Keeping every address in a map took
// about 365 MB.
const heapBound = 150 << 20

func TestCheck2MillionRowsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("2.1 million rows")
	}
	t.Setenv("TMPDIR", t.TempDir())
	spec := inventorytest.Spec{Rows: 2_100_000, Orgs: 25_000}
	plan, err := inventorytest.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := inventorytest.NewReader(spec)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe() // a stream: Check copies it to a temporary file
	go func() {
		_, err := io.Copy(pw, stream{gen})
		pw.CloseWithError(err)
	}()
	var sum *Summary
	peak := procstat.PeakHeap(func() { sum, err = Check(pr) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak heap %.1f MB (bound %d MB)", float64(peak)/1e6, heapBound>>20)
	if peak > heapBound {
		t.Errorf("peak heap %d MB, over the bound of %d MB", peak>>20, heapBound>>20)
	}
	if sum.Mailboxes != spec.Rows || len(sum.Orgs) != len(plan) {
		t.Fatalf("%d mailboxes in %d organizations, want %d in %d", sum.Mailboxes, len(sum.Orgs), spec.Rows, len(plan))
	}
	for i, p := range plan {
		if o := sum.Orgs[i]; o != (OrgCount{Code: p.Code, Name: p.Name, Wave: p.Wave, Mailboxes: p.Mailboxes, FirstLine: p.FirstLine}) {
			t.Fatalf("organization %d = %+v, want %+v", i, o, p)
		}
	}
}

func TestCheckFindsDuplicates2MillionLinesApart(t *testing.T) {
	if testing.Short() {
		t.Skip("2.1 million rows")
	}
	spec := inventorytest.Spec{Rows: 2_100_000, Orgs: 25_000, Duplicates: [][2]int{{2, 2_000_000}}}
	gen, err := inventorytest.NewReader(spec) // read again by seeking to the start
	if err != nil {
		t.Fatal(err)
	}
	first := firstAddress(t, spec)
	_, err = Check(gen)
	les := lineErrors(t, err)
	want := fmt.Sprintf("line 2000000: mailbox %s is listed twice (first on line 2)", strings.ToUpper(first))
	if len(les) != 1 || les[0].Line != 2_000_000 || les[0].Other != 2 || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// firstAddress returns the mailbox on line 2 of a generated file.
func firstAddress(t *testing.T, spec inventorytest.Spec) string {
	gen, err := inventorytest.NewReader(spec)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := newRowReader(io.LimitReader(gen, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	var row Row
	if err := rr.next(&row); err != nil {
		t.Fatal(err)
	}
	return row.Mailbox
}

// Two organizations that list one target mailbox would both write it: the
// second row is refused, whatever the case of the address.
func TestCheckRefusesATargetMailboxListedTwice(t *testing.T) {
	in := "organization,mailbox,source_user,target_user\nRXH,a@rxh.uk,a,alice@cloud.example\nGP7,a@gp7.uk,a,Alice@Cloud.example\n"
	const want = "line 3: target user Alice@Cloud.example is listed twice (first on line 2): one target mailbox gets one writer, so list it once"
	for name, read := range map[string]func() error{
		"Check": func() error { _, err := Check(strings.NewReader(in)); return err },
		"Parse": func() error { _, err := Parse(strings.NewReader(in)); return err },
	} {
		err := read()
		les := lineErrors(t, err)
		if len(les) != 1 || les[0].Field != "target_user" || les[0].Other != 2 || err.Error() != want {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
}
