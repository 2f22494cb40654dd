package imapconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestQuoteMailboxIsModifiedUTF7(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":             "INBOX",
		"inbox":             "INBOX",
		"Clinical & Admin":  `"Clinical &- Admin"`,
		"Réunions/Été 2024": `"R&AOk-unions/&AMk-t&AOk- 2024"`,
		"Ärzte":             `"&AMQ-rzte"`,
		`Say "hi"`:          `"Say \"hi\""`,
		"日本語":               `"&ZeVnLIqe-"`,
	} {
		if got := quoteMailbox(in); got != want {
			t.Errorf("quoteMailbox(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseTaggedAnswers(t *testing.T) {
	ok := parseTagged("m7", "m7 OK [APPENDUID 38505 3955] APPEND completed")
	if !ok.OK || ok.UIDValidity != 38505 || ok.UID != 3955 || ok.Err != nil {
		t.Fatalf("OK answer: %+v", ok)
	}
	no := parseTagged("m8", "m8 NO [LIMIT] Mail size is too large")
	var ie *imap.Error
	if no.OK || !errors.As(no.Err, &ie) || ie.Code != "LIMIT" || ie.Text != "Mail size is too large" {
		t.Fatalf("NO answer: %+v", no)
	}
	if c := Classify("append", no.Err); !errors.As(c, new(*Error)) || c.(*Error).Kind != KindTooBig {
		t.Fatalf("LIMIT must classify as too big: %v", c)
	}
	bad := parseTagged("m9", "m9 BAD Error in IMAP command")
	if bad.OK || !errors.As(bad.Err, &ie) || ie.Type != imap.StatusResponseTypeBad {
		t.Fatalf("BAD answer: %+v", bad)
	}
}

// scriptedAppendServer answers LOGIN, CAPABILITY, SELECT (refused for
// "Missing") and APPEND with LITERAL+, and logs every command it saw.
func scriptedAppendServer(t *testing.T) (Address, <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen := make(chan []string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		var log []string
		defer func() { seen <- log }()
		r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
		say := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
		say("* OK ready")
		uid := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(strings.TrimRight(line, "\r\n"))
			tag, cmd := f[0], strings.ToUpper(f[1])
			switch cmd {
			case "LOGIN":
				log = append(log, cmd)
				say(tag + " OK logged in")
			case "CAPABILITY":
				say("* CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS")
				say(tag + " OK done")
			case "SELECT":
				log = append(log, cmd+" "+f[2])
				if f[2] == `"Missing"` {
					say(tag + " NO [NONEXISTENT] Mailbox doesn't exist")
					continue
				}
				say("* 0 EXISTS")
				say(tag + " OK [READ-WRITE] selected")
			case "APPEND":
				log = append(log, cmd+" "+f[2])
				lit := f[len(f)-1]
				n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(lit, "{"), "+}"))
				if _, err := io.CopyN(io.Discard, r, int64(n)+2); err != nil {
					return
				}
				if f[2] == `"Missing"` {
					say(tag + " NO [TRYCREATE] Mailbox doesn't exist")
					continue
				}
				uid++
				say("* " + strconv.Itoa(uid) + " EXISTS")
				say(fmt.Sprintf("%s OK [APPENDUID 7 %d] appended", tag, uid))
			case "LOGOUT":
				say("* BYE")
				say(tag + " OK bye")
				return
			default:
				say(tag + " BAD unknown")
			}
		}
	}()
	addr, err := ParseAddress("imap://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return addr, seen
}

// TestAppenderSelectsEachMailboxOnce: the pipeline opens a mailbox once per
// run of APPENDs to it (Dovecot then appends to the open UID list instead of
// rewriting it per message), skips the SELECT's own answers, and selects
// again after the server refused one.
func TestAppenderSelectsEachMailboxOnce(t *testing.T) {
	addr, seen := scriptedAppendServer(t)
	a, err := DialAppender(context.Background(), addr, Login{Username: "u", Password: "p"}, Options{}, 8)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		ok  bool
		uid uint32
	}
	steps := []struct {
		mailbox string
		want    want
	}{
		{"INBOX", want{true, 1}}, {"INBOX", want{true, 2}}, {"Sent", want{true, 3}},
		{"INBOX", want{true, 4}}, {"Missing", want{false, 0}}, {"Missing", want{false, 0}},
	}
	for i, s := range steps {
		body := fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)
		tag, err := a.Append(s.mailbox, []imap.Flag{imap.FlagSeen}, time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC), int64(len(body)), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		res := <-a.Results()
		if res.Tag != tag || res.OK != s.want.ok || res.UID != s.want.uid {
			t.Fatalf("append %d to %s: %+v, want tag %s %+v", i, s.mailbox, res, tag, s.want)
		}
		if !s.want.ok && Classify("append", res.Err).(*Error).Kind != KindNonExistent {
			t.Fatalf("append %d: refusal %v should classify as not found", i, res.Err)
		}
	}
	a.Close()
	got := strings.Join(<-seen, "\n")
	wantLog := strings.Join([]string{"LOGIN",
		"SELECT INBOX", "APPEND INBOX", "APPEND INBOX",
		`SELECT "Sent"`, `APPEND "Sent"`,
		"SELECT INBOX", "APPEND INBOX",
		`SELECT "Missing"`, `APPEND "Missing"`,
		`SELECT "Missing"`, `APPEND "Missing"`}, "\n")
	if got != wantLog {
		t.Fatalf("server saw:\n%s\nwant:\n%s", got, wantLog)
	}
}
