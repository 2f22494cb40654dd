package control

import "testing"

func TestStatusQuery(t *testing.T) {
	for _, c := range []struct {
		typ  string
		f    StatusFilter
		want string
	}{
		{"Organization", StatusFilter{}, `WorkflowType = 'Organization'`},
		{"Organization", StatusFilter{Phase: "Completed"}, `WorkflowType = 'Organization' AND MigrationPhase = 'Completed'`},
		{"Organization", StatusFilter{Phase: "PreStage", Wave: "w1"}, `WorkflowType = 'Organization' AND MigrationPhase = 'PreStage' AND Wave = 'w1'`},
		{"Organization", StatusFilter{Codes: []string{"RXH", "KLM"}}, `WorkflowType = 'Organization' AND OrganizationCode IN ('RXH', 'KLM')`},
		{"Campaign", StatusFilter{Wave: "x' OR WorkflowType = 'Mailbox"}, `WorkflowType = 'Campaign' AND Wave = 'x\' OR WorkflowType = \'Mailbox'`},
		{"Organization", StatusFilter{Wave: `a\' OR 1=1`}, `WorkflowType = 'Organization' AND Wave = 'a\\\' OR 1=1'`},
	} {
		if got := StatusQuery(c.typ, c.f); got != c.want {
			t.Errorf("StatusQuery(%q, %+v)\n got %s\nwant %s", c.typ, c.f, got, c.want)
		}
	}
}

func TestQuoteQueryValueNeverEndsTheLiteral(t *testing.T) {
	for _, s := range []string{"", "plain", "o'brien", `back\slash`, `\'`, `'''`, `"double"`} {
		q := QuoteQueryValue(s)
		// Undo the escapes the way the server's tokenizer does: the literal
		// must end exactly at the last character.
		var out []byte
		i := 1
		for ; i < len(q); i++ {
			if q[i] == '\\' {
				i++
				out = append(out, q[i])
				continue
			}
			if q[i] == '\'' {
				break
			}
			out = append(out, q[i])
		}
		if q[0] != '\'' || i != len(q)-1 || string(out) != s {
			t.Errorf("QuoteQueryValue(%q) = %s: decodes to %q, ends at %d of %d", s, q, out, i, len(q))
		}
	}
}
