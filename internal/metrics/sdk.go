package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// The Temporal SDK's metrics reach Prometheus through this adapter of the
// SDK's MetricsHandler: counters and gauges keep the SDK's names (as the
// SDK's tally reporter exports them), timers become histograms in seconds
// under the SDK's name. The SDK may emit one name with different tag sets
// (a failure counter adds status_code); a scrape gives every series of a
// name the union of its label names, the missing ones empty, which
// Prometheus reads as absent.

// TimerBuckets are the histogram buckets (seconds) of the SDK's timers;
// long polls last up to a minute.
var TimerBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindTimer
)

type series struct {
	labels map[string]string
	value  float64  // counter, gauge
	counts []uint64 // timer: per bucket (not cumulative), +Inf last
	sum    float64
	count  uint64
}

type family struct {
	kind   kind
	series map[string]*series // by labelKey
}

// sdkCollector holds the SDK's series; it is an unchecked collector (it
// describes nothing up front, names appear as the SDK uses them).
type sdkCollector struct {
	mu       sync.Mutex
	families map[string]*family
}

func newSDKCollector() *sdkCollector { return &sdkCollector{families: map[string]*family{}} }

func labelKey(tags map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(tags[k])
		b.WriteByte(0)
	}
	return b.String()
}

// get returns the series of name and tags, or nil if name is already a
// metric of another kind (the first kind wins).
func (c *sdkCollector) get(name string, k kind, tags map[string]string, key string) *series {
	f := c.families[name]
	if f == nil {
		f = &family{kind: k, series: map[string]*series{}}
		c.families[name] = f
	}
	if f.kind != k {
		return nil
	}
	s := f.series[key]
	if s == nil {
		s = &series{labels: tags}
		if k == kindTimer {
			s.counts = make([]uint64, len(TimerBuckets)+1)
		}
		f.series[key] = s
	}
	return s
}

func (c *sdkCollector) Describe(chan<- *prometheus.Desc) {}

func (c *sdkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, f := range c.families {
		keys := map[string]bool{}
		for _, s := range f.series {
			for k := range s.labels {
				keys[k] = true
			}
		}
		labelNames := slices.Sorted(maps.Keys(keys))
		help := "Temporal SDK metric " + name + "."
		if strings.HasPrefix(name, "mailshift_") {
			help = "mailshift workflow metric " + name + "."
		}
		desc := prometheus.NewDesc(name, help, labelNames, nil)
		for _, s := range f.series {
			values := make([]string, len(labelNames))
			for i, k := range labelNames {
				values[i] = s.labels[k]
			}
			var m prometheus.Metric
			var err error
			switch f.kind {
			case kindCounter:
				m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, s.value, values...)
			case kindGauge:
				m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.value, values...)
			case kindTimer:
				buckets := make(map[float64]uint64, len(TimerBuckets))
				var cum uint64
				for i, ub := range TimerBuckets {
					cum += s.counts[i]
					buckets[ub] = cum
				}
				m, err = prometheus.NewConstHistogram(desc, s.count, s.sum, buckets, values...)
			}
			if err == nil {
				ch <- m
			}
		}
	}
}

// sdkHandler implements client.MetricsHandler with fixed tags.
type sdkHandler struct {
	c    *sdkCollector
	tags map[string]string
}

func (h *sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[sanitize(k)] = v
	}
	for k, v := range tags {
		merged[sanitize(k)] = v
	}
	return &sdkHandler{c: h.c, tags: merged}
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

func (h *sdkHandler) Counter(name string) client.MetricsCounter {
	name, key := sanitize(name), labelKey(h.tags)
	return counterFunc(func(d int64) {
		if d <= 0 {
			return
		}
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		if s := h.c.get(name, kindCounter, h.tags, key); s != nil {
			s.value += float64(d)
		}
	})
}

func (h *sdkHandler) Gauge(name string) client.MetricsGauge {
	name, key := sanitize(name), labelKey(h.tags)
	return gaugeFunc(func(v float64) {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		if s := h.c.get(name, kindGauge, h.tags, key); s != nil {
			s.value = v
		}
	})
}

func (h *sdkHandler) Timer(name string) client.MetricsTimer {
	name, key := sanitize(name), labelKey(h.tags)
	return timerFunc(func(d time.Duration) {
		sec := d.Seconds()
		i, _ := slices.BinarySearch(TimerBuckets, sec) // first bucket >= sec
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		if s := h.c.get(name, kindTimer, h.tags, key); s != nil {
			s.counts[i]++
			s.sum += sec
			s.count++
		}
	})
}

// sanitize makes a Prometheus metric or label name of an SDK name.
func sanitize(name string) string {
	ok := func(r rune, first bool) bool {
		return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || (!first && r >= '0' && r <= '9')
	}
	var b strings.Builder
	for i, r := range name {
		if ok(r, i == 0) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
