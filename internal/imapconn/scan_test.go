package imapconn

import (
	"slices"
	"testing"
)

// The scanner reports the lines that start commands or responses, passing
// over literals (even split across reads) and the rest of their line.
func TestLineScannerSkipsLiterals(t *testing.T) {
	stream := "T1 LOGIN {4+}\r\nT9 X {1+}\r\np\r\n" + // literals that look like a command
		"T2 APPEND INBOX {12}\r\nT3 OK\r\nfoo\r\n\r\n" +
		"DONE\r\n" +
		"T4 UID FETCH 1:* (BODY.PEEK[])\r\n"
	var got []string
	var s lineScanner
	for i := 0; i < len(stream); i += 5 {
		s.feed([]byte(stream[i:min(i+5, len(stream))]), func(h string) { got = append(got, h) })
	}
	want := []string{"T1 LOGIN {4+}", "T2 APPEND INBOX {12}", "DONE", "T4 UID FETCH 1:* (BODY.PEEK[])"}
	if !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}

	c := &timedConn{}
	for _, h := range got {
		c.sent(h)
	}
	c.answered("* 1 FETCH (UID 1)")
	c.answered("T2 OK [APPENDUID 1 1] done")
	c.answered("+ go ahead")
	if len(c.pending) != 2 || c.oldest() != "LOGIN" || c.pending[1].name != "UID FETCH" {
		t.Fatalf("pending %v", c.pending)
	}
}
