package inventory

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseGroupsByOrganizationInFileOrder(t *testing.T) {
	inv, err := Parse(strings.NewReader("organization,mailbox,source_user,target_user,wave\n" +
		"RXH,a@rxh.example,a,a@cloud,1\nGP7,b@gp7.example,b,b@cloud,2\nRXH,c@rxh.example,c,c@cloud,1\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Orgs) != 2 || inv.Orgs[0].Code != "RXH" || len(inv.Orgs[0].Rows) != 2 || inv.Orgs[1].Wave != "2" {
		t.Fatalf("unexpected grouping: %+v", inv.Orgs)
	}
	if inv.Mailboxes() != 3 {
		t.Fatalf("mailboxes = %d", inv.Mailboxes())
	}
}

func TestParseErrorsNameLineAndField(t *testing.T) {
	cases := map[string]string{
		"organization,mailbox,source_user\nX,a@b.c,a\n":                                     `missing column "target_user"`,
		"organization,mailbox,source_user,target_user,colour\n":                             `unknown column "colour"`,
		"organization,mailbox,source_user,target_user\nX,a@b.c,,t\n":                        "line 2: mailbox a@b.c: field source_user is empty",
		"organization,mailbox,source_user,target_user\nX,not-an-address,s,t\n":              `line 2: field mailbox "not-an-address"`,
		"organization,mailbox,source_user,target_user\nX,a@b.c,s,t\nY,A@b.c,s,t\n":          "line 3: mailbox A@b.c is listed twice",
		"organization,mailbox,source_user,target_user,wave\nX,a@b.c,s,t,1\nX,b@b.c,s,t,2\n": `wave "2" conflicts`,
		"organization,mailbox,source_user,target_user\n":                                    "no mailbox rows",
	}
	for in, want := range cases {
		_, err := Parse(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): want error containing %q, got %v", in, want, err)
		}
		_, err = Check(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q): want error containing %q, got %v", in, want, err)
		}
	}
}

func TestCheckCountsWithoutKeepingRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("organization,mailbox,source_user,target_user\n")
	for i := 0; i < 1000; i++ {
		b.WriteString("ORG")
		b.WriteString(string(rune('A' + i%5)))
		b.WriteString(",u")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(strconv.Itoa(i))
		b.WriteString("@example.org,u,t")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("\n")
	}
	sum, err := Check(strings.NewReader(b.String()))
	if err != nil || len(sum.Orgs) != 5 || sum.Mailboxes != 1000 {
		t.Fatalf("Check = %+v, %v", sum, err)
	}
	for i, o := range sum.Orgs {
		if o.Code != "ORG"+string(rune('A'+i)) || o.Mailboxes != 200 || o.FirstLine != 2+i {
			t.Errorf("organization %d = %+v", i, o)
		}
	}
}
