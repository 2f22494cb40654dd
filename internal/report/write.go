package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailshift/mailshift/internal/transfer"
)

// Writer streams reports into one document. Close finishes it (the header
// of an empty table, the closing bracket of a JSON array) and flushes; it
// does not close the underlying io.Writer.
type Writer interface {
	Write(r *MailboxReport) error
	Close() error
}

// Columns of the mailbox CSV, in order. Per pass (TransferPasses, "-"
// written "_"): copied, bytes, finished, duration_s.
var Columns = mailboxColumns()

// SkippedColumns of the skipped-items CSV, in order.
var SkippedColumns = []string{
	"organization", "address", "folder", "uidvalidity", "uid", "size", "message_id", "date",
	"reason", "detail", "staged_as", "imported",
}

// KeywordColumns of the keywords CSV (messages copied without their
// keywords), in order.
var KeywordColumns = []string{"organization", "address", "folder", "uidvalidity", "uid", "target_folder", "target_uid", "keywords"}

func mailboxColumns() []string {
	c := []string{
		"organization", "address", "state", "consistency", "rules", "passes", "started", "finished", "duration_s",
		"folders", "source_messages", "copied", "copied_bytes", "matched", "imported", "imported_bytes",
		"target_messages", "target_bytes", "skipped", "skipped_by_reason", "staged",
		"validation", "validation_level", "missing", "duplicates", "altered", "flag_mismatch", "date_mismatch", "extra", "sampled",
	}
	for _, p := range TransferPasses {
		p = strings.ReplaceAll(p, "-", "_")
		c = append(c, p+"_copied", p+"_bytes", p+"_finished", p+"_duration_s")
	}
	return append(c, "throttled", "throttled_s", "keywords_dropped", "last_error", "notes")
}

// WriteCSV writes one row per mailbox under a header of Columns.
func WriteCSV(w io.Writer, reports []MailboxReport) error {
	return writeAll(NewCSVWriter(w), reports)
}

// WriteSkippedCSV writes one row per skipped item under SkippedColumns.
func WriteSkippedCSV(w io.Writer, reports []MailboxReport) error {
	return writeAll(NewSkippedCSVWriter(w), reports)
}

// WriteJSON writes a JSON array of the reports, one per line.
func WriteJSON(w io.Writer, reports []MailboxReport) error {
	return writeAll(NewJSONWriter(w), reports)
}

func writeAll(wr Writer, reports []MailboxReport) error {
	for i := range reports {
		if err := wr.Write(&reports[i]); err != nil {
			return err
		}
	}
	return wr.Close()
}

type csvWriter struct {
	w      *csv.Writer
	header []string
	rows   func(r *MailboxReport) [][]string
	begun  bool
}

func (c *csvWriter) begin() error {
	if c.begun {
		return nil
	}
	c.begun = true
	return c.w.Write(c.header)
}

func (c *csvWriter) Write(r *MailboxReport) error {
	if err := c.begin(); err != nil {
		return err
	}
	for _, row := range c.rows(r) {
		if err := c.w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

func (c *csvWriter) Close() error {
	if err := c.begin(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

// NewCSVWriter streams the mailbox table.
func NewCSVWriter(w io.Writer) Writer {
	return &csvWriter{w: csv.NewWriter(w), header: Columns, rows: func(r *MailboxReport) [][]string { return [][]string{mailboxRow(r)} }}
}

// NewSkippedCSVWriter streams the skipped-items table.
func NewSkippedCSVWriter(w io.Writer) Writer {
	return &csvWriter{w: csv.NewWriter(w), header: SkippedColumns, rows: skippedRows}
}

func mailboxRow(r *MailboxReport) []string {
	var passes []string
	byPass := map[string]PassReport{}
	for _, p := range r.Passes {
		passes = append(passes, p.Pass)
		byPass[p.Pass] = p
	}
	validation := ""
	var v Validation
	if r.Validation != nil {
		v = *r.Validation
		validation = "failed"
		if v.OK {
			validation = "ok"
		}
	}
	num := func(n int) string {
		if r.Validation == nil {
			return ""
		}
		return strconv.Itoa(n)
	}
	row := []string{
		text(r.Organization), text(r.Address), string(r.State), r.Consistency, strings.Join(r.Rules, ";"),
		strings.Join(passes, ";"), stamp(r.Started), stamp(r.Finished), secs(r.DurationSeconds),
		strconv.Itoa(r.Folders), i64(r.SourceMessages), i64(r.Copied), i64(r.CopiedBytes), i64(r.Matched),
		strconv.Itoa(r.Imported), i64(r.ImportedBytes), i64(r.TargetMessages), i64(r.TargetBytes),
		strconv.Itoa(r.Skipped), text(ByReason(r.SkippedByReason)), strconv.Itoa(r.Staged),
		validation, v.Level, num(v.Missing), num(v.Duplicates), num(v.Altered), num(v.FlagMismatch), num(v.DateMismatch), num(v.Extra), num(v.Sampled),
	}
	for _, name := range TransferPasses {
		p, ok := byPass[name]
		if !ok {
			row = append(row, "", "", "", "")
			continue
		}
		row = append(row, i64(p.Copied), i64(p.Bytes), stamp(p.Finished), secs(p.DurationSeconds))
	}
	throttled, waited := 0, time.Duration(0)
	for _, p := range r.Passes {
		throttled += p.Throttled
		waited += p.ThrottledFor
	}
	return append(row, strconv.Itoa(throttled), secs(waited.Seconds()), i64(r.KeywordsDropped), text(r.LastError), text(strings.Join(r.Notes, "; ")))
}

// NewKeywordsCSVWriter streams the table of messages copied without their
// keywords.
func NewKeywordsCSVWriter(w io.Writer) Writer {
	return &csvWriter{w: csv.NewWriter(w), header: KeywordColumns, rows: keywordRows}
}

func keywordRows(r *MailboxReport) [][]string {
	rows := make([][]string, 0, len(r.KeywordNotes))
	for _, k := range r.KeywordNotes {
		rows = append(rows, []string{
			text(r.Organization), text(r.Address), text(k.Folder), strconv.FormatUint(uint64(k.UIDValidity), 10),
			strconv.FormatUint(uint64(k.UID), 10), text(k.TargetFolder), strconv.FormatUint(uint64(k.TargetUID), 10), text(strings.Join(k.Keywords, " ")),
		})
	}
	return rows
}

func skippedRows(r *MailboxReport) [][]string {
	rows := make([][]string, 0, len(r.SkippedItems))
	for _, s := range r.SkippedItems {
		rows = append(rows, []string{
			text(r.Organization), text(r.Address), text(s.Folder), strconv.FormatUint(uint64(s.UIDValidity), 10),
			strconv.FormatUint(uint64(s.UID), 10), i64(s.Size), text(s.MessageID), text(s.Date),
			text(s.Reason), text(s.Detail), text(s.StagedAs), strconv.FormatBool(s.Imported),
		})
	}
	return rows
}

// ByReason formats counts by reason compactly and stably: "a=1;b=2".
func ByReason(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k + "=" + strconv.Itoa(m[k]))
	}
	return b.String()
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// secs prints seconds to the millisecond: a sum of pass durations carries
// float noise (3.8689999999999998) that a spreadsheet would show.
func secs(s float64) string { return strconv.FormatFloat(math.Round(s*1000)/1000, 'f', -1, 64) }

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// text keeps a spreadsheet from taking free text (folder names, Message-IDs,
// server answers: all chosen by others) for a formula: a cell starting with
// = + - @ or a control character gets a leading apostrophe. JSON keeps the
// text as it is.
func text(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r\n", rune(s[0])) {
		return "'" + s
	}
	return s
}

type jsonWriter struct {
	w     io.Writer
	items func(r *MailboxReport) []any
	n     int
	buf   bytes.Buffer
}

// NewJSONWriter streams a JSON array of MailboxReport, one per line.
func NewJSONWriter(w io.Writer) Writer {
	return &jsonWriter{w: w, items: func(r *MailboxReport) []any { return []any{r} }}
}

// SkippedRecord is one element of the skipped-items JSON.
type SkippedRecord struct {
	Organization string `json:"organization"`
	Address      string `json:"address"`
	transfer.SkippedItem
}

// NewSkippedJSONWriter streams a JSON array of SkippedRecord, one per line.
func NewSkippedJSONWriter(w io.Writer) Writer {
	return &jsonWriter{w: w, items: func(r *MailboxReport) []any {
		out := make([]any, len(r.SkippedItems))
		for i, s := range r.SkippedItems {
			out[i] = SkippedRecord{Organization: r.Organization, Address: r.Address, SkippedItem: s}
		}
		return out
	}}
}

func (j *jsonWriter) Write(r *MailboxReport) error {
	for _, it := range j.items(r) {
		j.buf.Reset()
		if j.n == 0 {
			j.buf.WriteString("[\n")
		} else {
			j.buf.WriteString(",\n")
		}
		enc := json.NewEncoder(&j.buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(it); err != nil {
			return err
		}
		j.buf.Truncate(j.buf.Len() - 1) // Encode's newline
		if _, err := j.w.Write(j.buf.Bytes()); err != nil {
			return err
		}
		j.n++
	}
	return nil
}

func (j *jsonWriter) Close() error {
	end := "\n]\n"
	if j.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(j.w, end)
	return err
}
