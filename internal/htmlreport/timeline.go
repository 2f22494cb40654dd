package htmlreport

import (
	"sort"
	"time"
)

// MaxBuckets bounds the points of every time chart, whatever the size of
// the organization or campaign: 200 points draw a smooth line on a page and
// keep the file small.
const MaxBuckets = 200

// minBucket keeps a demo of a few seconds from being cut into buckets too
// short to mean anything.
const minBucket = 100 * time.Millisecond

// span is work done between two instants: a pass of a mailbox (its bytes
// copied), or an organization of a campaign. 24 bytes each, so an
// organization of 50,000 mailboxes holds a few MB of them at most.
type span struct {
	start, end int64 // Unix milliseconds
	bytes      int64
}

// event is something finished at an instant: n mailboxes done.
type event struct {
	at int64 // Unix milliseconds
	n  int64
}

// timeline collects spans and events and cuts them into at most MaxBuckets
// buckets of equal width once everything is in.
type timeline struct {
	spans  []span
	events []event
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func (t *timeline) addSpan(start, end time.Time, bytes int64) {
	if start.IsZero() || end.IsZero() {
		return
	}
	if end.Before(start) {
		end = start
	}
	t.spans = append(t.spans, span{ms(start), ms(end), bytes})
}

func (t *timeline) addEvent(at time.Time, n int64) {
	if at.IsZero() {
		return
	}
	t.events = append(t.events, event{ms(at), n})
}

func (t *timeline) empty() bool { return len(t.spans) == 0 && len(t.events) == 0 }

// series is a timeline cut into buckets: Start is the first bucket's
// beginning, each bucket Width long. Bytes[i] is the bytes copied during
// bucket i (a span's bytes spread evenly over its duration), Done[i] the
// events finished in it.
type series struct {
	Start time.Time
	Width time.Duration
	Bytes []float64
	Done  []int64
}

func (t *timeline) buckets() series {
	if t.empty() {
		return series{}
	}
	lo, hi := int64(1<<62), int64(-1<<62)
	for _, s := range t.spans {
		lo, hi = min(lo, s.start), max(hi, s.end)
	}
	for _, e := range t.events {
		lo, hi = min(lo, e.at), max(hi, e.at)
	}
	width := max((hi-lo+MaxBuckets-1)/MaxBuckets, minBucket.Milliseconds())
	n := int((hi-lo)/width) + 1
	n = min(n, MaxBuckets+1) // the last instant falls into a bucket of its own at most
	s := series{Start: time.UnixMilli(lo).UTC(), Width: time.Duration(width) * time.Millisecond, Bytes: make([]float64, n), Done: make([]int64, n)}
	idx := func(at int64) int { return min(int((at-lo)/width), n-1) }
	for _, sp := range t.spans {
		if sp.bytes == 0 {
			continue
		}
		if sp.end == sp.start {
			s.Bytes[idx(sp.start)] += float64(sp.bytes)
			continue
		}
		per := float64(sp.bytes) / float64(sp.end-sp.start)
		for i := idx(sp.start); i <= idx(sp.end); i++ {
			b0, b1 := lo+int64(i)*width, lo+int64(i+1)*width
			if ov := min(b1, sp.end) - max(b0, sp.start); ov > 0 {
				s.Bytes[i] += per * float64(ov)
			}
		}
	}
	for _, e := range t.events {
		s.Done[idx(e.at)] += e.n
	}
	return s
}

// bucketEnd is the end of bucket i.
func (s series) bucketEnd(i int) time.Time { return s.Start.Add(time.Duration(i+1) * s.Width) }

// total sums the spans' bytes and the events' counts.
func (t *timeline) total() (bytes, done int64) {
	for _, s := range t.spans {
		bytes += s.bytes
	}
	for _, e := range t.events {
		done += e.n
	}
	return bytes, done
}

// byCount lists m's keys by count, largest first, then by name.
func byCount(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
