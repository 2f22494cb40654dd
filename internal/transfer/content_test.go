package transfer_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/transfer"
)

// attachment is 300 bytes of binary data.
var attachment = func() []byte {
	b := make([]byte, 300)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

func wrapBase64(b []byte, width int) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > width {
		out.WriteString(s[:width] + "\r\n")
		s = s[width:]
	}
	out.WriteString(s + "\r\n")
	return out.String()
}

// original is a message as a source server holds it (LF line endings, as
// some stores keep them).
func original(subject, text string, att []byte) string {
	return strings.ReplaceAll("Return-Path: <alice@example.com>\n"+
		"X-Spam-Score: 0.1\n"+
		"From: Alice <alice@example.com>\n"+
		"To: Bob <bob@example.com>, Carol <carol@example.com>, Dave <dave@example.com>\n"+
		"Subject: "+subject+"\n"+
		"Date: Tue, 1 Dec 2026 10:00:00 +0000\n"+
		"Message-ID: <report-1@example.com>\n"+
		"MIME-Version: 1.0\n"+
		"Content-Type: multipart/mixed; boundary=\"==original==\"\n"+
		"\n"+
		"This is a multi-part message in MIME format.\n"+
		"--==original==\n"+
		"Content-Type: text/plain; charset=us-ascii\n"+
		"Content-Transfer-Encoding: 7bit\n"+
		"\n"+
		text+
		"--==original==\n"+
		"Content-Type: application/pdf; name=report.pdf\n"+
		"Content-Disposition: attachment; filename=report.pdf\n"+
		"Content-Transfer-Encoding: base64\n"+
		"\n"+
		strings.ReplaceAll(wrapBase64(att, 60), "\r\n", "\n")+
		"--==original==--\n", "\r\n", "\n")
}

// rerendered is original as Exchange renders it back: header fields
// reordered and refolded, a Received field added and the X- field gone,
// new boundaries, the text quoted-printable (trailing newline dropped), the
// attachment base64 at 76 columns, CRLF.
func rerendered(subject, qpText string, att []byte) string {
	return "Received: from EXO.prod.outlook.com by EXO2.prod.outlook.com with HTTPS; Tue, 1 Dec 2026\r\n" +
		" 10:00:05 +0000\r\n" +
		"Content-Type: multipart/mixed;\r\n\tboundary=\"_004_EXO1234_\"\r\n" +
		"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n" +
		"From: Alice <alice@example.com>\r\n" +
		"Message-ID:\r\n <report-1@example.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Return-Path: alice@example.com\r\n" +
		"Subject: " + subject + "\r\n" +
		"To: Bob <bob@example.com>,\r\n\tCarol <carol@example.com>,\r\n\tDave <dave@example.com>\r\n" +
		"\r\n" +
		"--_004_EXO1234_\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"Content-Type: text/plain; charset=\"utf-8\"\r\n" +
		"\r\n" +
		qpText + "\r\n" +
		"--_004_EXO1234_\r\n" +
		"Content-Disposition: attachment;\r\n\tfilename=\"report.pdf\"; size=300\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"Content-Type: application/pdf; name=\"report.pdf\"\r\n" +
		"\r\n" +
		wrapBase64(att, 76) +
		"\r\n" +
		"--_004_EXO1234_--\r\n"
}

const (
	srcText = "Hello Bob,   \nthe report is attached; it runs to more than seventy-six characters on this line.\n\nAlice\n\n"
	qpText  = "Hello Bob,\r\nthe report is attached; it runs to more than seventy-six characters on=\r\n this line.\r\n\r\nAlice"
)

func digestOf(t *testing.T, msg string) string {
	t.Helper()
	d, err := transfer.ContentDigest(strings.NewReader(msg))
	require.NoError(t, err)
	require.Len(t, d, 32) // XXH3-128, hex
	return d
}

func TestContentDigestSurvivesRerendering(t *testing.T) {
	src := original("Quarterly report", srcText, attachment)
	exo := rerendered("Quarterly report", qpText, attachment)
	require.NotEqual(t, src, exo)
	require.Equal(t, digestOf(t, src), digestOf(t, exo))

	// The Subject encoded otherwise and folded otherwise.
	a := original("=?iso-8859-1?q?Gr=FC=DFe_aus?= dem Norden", srcText, attachment)
	b := rerendered("=?utf-8?B?R3LDvMOfZSBhdXMgZGVt?=\r\n  Norden", qpText, attachment)
	require.Equal(t, digestOf(t, a), digestOf(t, b))

	// The text in another charset and encoding.
	latin := strings.Replace(original("x", "Gr\xfc\xdfe\n", attachment), "charset=us-ascii", "charset=iso-8859-1", 1)
	latin = strings.Replace(latin, "7bit", "8bit", 1)
	utf := rerendered("x", "Gr=C3=BC=C3=9Fe", attachment)
	require.Equal(t, digestOf(t, latin), digestOf(t, utf))

	// And the in-process Exchange's own re-rendering.
	require.Equal(t, digestOf(t, src), digestOf(t, string(estate.Rerender([]byte(src)))))
	require.Equal(t, digestOf(t, latin), digestOf(t, string(estate.Rerender([]byte(latin)))))
}

func TestContentDigestDetectsChanges(t *testing.T) {
	base := digestOf(t, original("Quarterly report", srcText, attachment))
	changedAtt := bytes.Clone(attachment)
	changedAtt[150] ^= 1
	for name, msg := range map[string]string{
		"body char":   rerendered("Quarterly report", strings.Replace(qpText, "Bob", "Bub", 1), attachment),
		"body line":   rerendered("Quarterly report", strings.Replace(qpText, "\r\n\r\nAlice", "\r\nAlice", 1), attachment),
		"attachment":  rerendered("Quarterly report", qpText, changedAtt),
		"truncated":   rerendered("Quarterly report", qpText, attachment[:299]),
		"subject":     rerendered("Quarterly report!", qpText, attachment),
		"message-id":  strings.Replace(rerendered("Quarterly report", qpText, attachment), "report-1@", "report-2@", 1),
		"media type":  strings.Replace(rerendered("Quarterly report", qpText, attachment), "application/pdf", "application/octet-stream", 1),
		"dropped att": strings.Split(rerendered("Quarterly report", qpText, attachment), "--_004_EXO1234_\r\nContent-Disposition")[0] + "--_004_EXO1234_--\r\n",
	} {
		require.NotEqual(t, base, digestOf(t, msg), name)
	}
}

func TestContentDigestPlainMessage(t *testing.T) {
	crlf := "Subject: plain\r\nMessage-ID: <p@x>\r\nFrom: a@b\r\n\r\nline one\r\nline two  \r\n\r\n"
	lf := "From: a@b\nMessage-ID: <p@x>\nSubject:  plain \n\nline one\nline two\n"
	qp := "From: a@b\r\nMessage-ID: <p@x>\r\nSubject: plain\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nline=20one\r\nline two=20=20\r\n"
	d := digestOf(t, crlf)
	require.Equal(t, d, digestOf(t, lf))
	require.Equal(t, d, digestOf(t, qp))
	require.Equal(t, d, digestOf(t, string(estate.Rerender([]byte(lf)))))
	require.NotEqual(t, d, digestOf(t, strings.Replace(crlf, "two", "too", 1)))
	require.NotEqual(t, d, digestOf(t, strings.Replace(crlf, "one\r\n", "one ", 1)))
	// Without a body, without a header.
	require.NotEqual(t, digestOf(t, "Subject: a\r\n"), digestOf(t, "Subject: b\r\n"))
	require.NotEqual(t, digestOf(t, "\r\nbody a"), digestOf(t, "\r\nbody b"))
	require.NotEqual(t, digestOf(t, ""), digestOf(t, "\r\nx"))
}

func TestContentDigestMalformed(t *testing.T) {
	good := original("Quarterly report", srcText, attachment)
	unclosed := strings.TrimSuffix(good, "--==original==--\n")
	noBoundary := strings.Replace(good, "boundary=\"==original==\"", "boundary=\"==other==\"", 1)
	badB64 := strings.Replace(good, "\n\n"+base64.StdEncoding.EncodeToString(attachment)[:8], "\n\n!!!!", 1)
	for name, msg := range map[string]string{
		"missing closing boundary": unclosed,
		"boundary not in body":     noBoundary,
		"no boundary parameter":    strings.Replace(good, "; boundary=\"==original==\"", "", 1),
		"bad content-type":         strings.Replace(good, "multipart/mixed; boundary=", "multipart/mixed; boundary", 1),
		"unknown encoding":         strings.Replace(good, "Content-Transfer-Encoding: base64", "Content-Transfer-Encoding: x-uue", 1),
		"bad base64":               badB64,
		"bad header":               " folded first line\n" + good,
		"header without colon":     "From nobody Tue Dec  1 10:00:00 2026\n" + good,
	} {
		t.Run(name, func(t *testing.T) {
			require.NotEqual(t, good, msg)
			d := digestOf(t, msg)
			require.Equal(t, d, digestOf(t, msg), "deterministic")
			require.NotEqual(t, digestOf(t, good), d)
			// Raw fallback still sees the content.
			require.NotEqual(t, d, digestOf(t, strings.Replace(msg, "Alice\n", "Alicia\n", 1)))
		})
	}
	// The raw fallback normalises like text.
	require.Equal(t, digestOf(t, unclosed), digestOf(t, strings.ReplaceAll(unclosed, "\n", "\r\n")))

	// A charset no one knows keeps its decoded bytes, which a re-rendering
	// that re-encodes the part keeps too.
	unknown := strings.Replace(good, "charset=us-ascii", "charset=x-no-such-charset", 1)
	require.Equal(t, digestOf(t, unknown), digestOf(t, string(estate.Rerender([]byte(unknown)))))
	require.NotEqual(t, digestOf(t, unknown), digestOf(t, strings.Replace(unknown, "Alice\n", "Alicia\n", 1)))
}

// countingReader counts what was read and hands out small chunks.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(p) > 7 {
		p = p[:7]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestContentDigestReadsToEOF(t *testing.T) {
	good := original("Quarterly report", srcText, attachment)
	for name, msg := range map[string]string{
		"good":             good,
		"rerendered":       rerendered("Quarterly report", qpText, attachment),
		"unclosed":         strings.TrimSuffix(good, "--==original==--\n"),
		"trailing":         good + "epilogue\n\n--==original==--\ngarbage after the end\n",
		"bad b64":          strings.Replace(good, "Content-Type: application/pdf", "Content-Type: text/plain", 1) + "=",
		"bad header":       " x\n" + good,
		"no body":          "Subject: x",
		"empty":            "",
		"huge header line": "Subject: " + strings.Repeat("x", 2<<20) + "\n\nbody",
	} {
		cr := &countingReader{r: strings.NewReader(msg)}
		_, err := transfer.ContentDigest(cr)
		require.NoError(t, err, name)
		require.EqualValues(t, len(msg), cr.n, name)
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestContentDigestReadError(t *testing.T) {
	boom := errors.New("connection reset")
	for _, msg := range []string{"", "Subject: x\r\n", original("x", srcText, attachment)} {
		_, err := transfer.ContentDigest(&failingReader{r: strings.NewReader(msg), err: boom})
		require.ErrorIs(t, err, boom)
	}
}

// bigMessage streams a message with a base64 attachment of about size
// bytes without holding it: lines of 76 base64 characters, each a 57-byte
// block.
func bigMessage(size int64) io.Reader {
	head := "Subject: big\r\nMessage-ID: <big@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	block := make([]byte, 57)
	for i := range block {
		block[i] = byte(i * 31)
	}
	line := base64.StdEncoding.EncodeToString(block) + "\r\n"
	return io.MultiReader(strings.NewReader(head), &repeatReader{s: line, n: size / 57},
		strings.NewReader("--b--\r\n"))
}

// repeatReader reads s n times.
type repeatReader struct {
	s   string
	n   int64
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	k := 0
	for k < len(p) && r.n > 0 {
		c := copy(p[k:], r.s[r.off:])
		k += c
		r.off += c
		if r.off == len(r.s) {
			r.off = 0
			r.n--
		}
	}
	if k == 0 {
		return 0, io.EOF
	}
	return k, nil
}

func TestContentDigestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100 MB")
	}
	const size = 100 << 20
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d, err := transfer.ContentDigest(bigMessage(size))
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	small, err := transfer.ContentDigest(bigMessage(size - 57))
	require.NoError(t, err)
	require.NotEqual(t, d, small)
	// The whole run allocates far less than the attachment.
	alloc := after.TotalAlloc - before.TotalAlloc
	require.Less(t, alloc, uint64(size/4), fmt.Sprintf("allocated %d bytes", alloc))
}
