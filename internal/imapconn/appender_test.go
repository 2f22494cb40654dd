package imapconn

import (
	"errors"
	"testing"

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
