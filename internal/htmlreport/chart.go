package htmlreport

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Chart geometry, in SVG user units; the page scales the SVG to its width.
const (
	chartW      = 760
	chartH      = 220
	padL, padR  = 64, 40
	padT, padB  = 14, 30
	plotW       = chartW - padL - padR
	plotH       = chartH - padT - padB
	barRowH     = 22
	barLabelW   = 230
	barChartMax = 30 // reasons or scores drawn; the table lists them all
)

// Tick is an axis label at a position.
type Tick struct {
	Pos   float64
	Label string
}

// Bar is one rectangle with its tooltip.
type Bar struct {
	X, Y, W, H float64
	Title      string
	Class      string
}

// Chart is one inline SVG: a line (Path, Area) or bars over labelled axes.
type Chart struct {
	Title, Unit    string
	W, H           int
	PlotX, PlotY   int
	PlotW, PlotH   int
	Path, Area     string
	Bars           []Bar
	XTicks, YTicks []Tick
	// Desc is the chart in words, for screen readers and text browsers.
	Desc string
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten, and gives the
// tick step (a quarter or a fifth of it).
func niceMax(v float64) (top, step float64) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 0.25
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p+1e-9*p {
			top = m * p
			break
		}
	}
	switch top / p {
	case 1, 2, 10:
		step = top / 4
	default:
		step = top / 5
	}
	return top, step
}

func yTicks(top, step float64, format func(float64) string) []Tick {
	var ts []Tick
	for v := 0.0; v <= top+step/2; v += step {
		ts = append(ts, Tick{Pos: padT + plotH - v/top*plotH, Label: format(v)})
	}
	return ts
}

// timeTicks labels about six instants of [start, end] in UTC.
func timeTicks(start time.Time, d time.Duration) []Tick {
	layout := "15:04:05"
	switch {
	case d > 48*time.Hour:
		layout = "Jan 2"
	case d > 12*time.Hour:
		layout = "Jan 2 15:04"
	case d > 10*time.Minute:
		layout = "15:04"
	}
	var ts []Tick
	for i := 0; i <= 5; i++ {
		at := start.Add(time.Duration(float64(d) * float64(i) / 5))
		ts = append(ts, Tick{Pos: padL + float64(plotW)*float64(i)/5, Label: at.UTC().Format(layout)})
	}
	return ts
}

func frame(title, unit string) Chart {
	return Chart{Title: title, Unit: unit, W: chartW, H: chartH, PlotX: padL, PlotY: padT, PlotW: plotW, PlotH: plotH}
}

// cumulative draws the running total of per-bucket values as a line from
// zero at the series' start to each bucket's end.
func cumulative(s series, title, unit string, values []float64, format func(float64) string) Chart {
	c := frame(title, unit)
	total := 0.0
	cum := make([]float64, len(values))
	for i, v := range values {
		total += v
		cum[i] = total
	}
	top, step := niceMax(total)
	d := time.Duration(len(values)) * s.Width
	x := func(i int) float64 { return padL + float64(plotW)*float64(i)/float64(len(values)) }
	y := func(v float64) float64 { return padT + plotH - v/top*plotH }
	var p strings.Builder
	fmt.Fprintf(&p, "M%.1f,%.1f", x(0), y(0))
	for i, v := range cum {
		fmt.Fprintf(&p, " L%.1f,%.1f", x(i+1), y(v))
	}
	c.Path = p.String()
	c.Area = fmt.Sprintf("%s L%.1f,%.1f L%.1f,%.1f Z", c.Path, x(len(values)), y(0), x(0), y(0))
	c.YTicks = yTicks(top, step, format)
	c.XTicks = timeTicks(s.Start, d)
	c.Desc = fmt.Sprintf("%s: %s in all, from %s to %s (UTC).", title, format(total), s.Start.Format(time.RFC3339), s.Start.Add(d).Format(time.RFC3339))
	return c
}

// rate draws per-bucket values divided by the bucket's seconds as bars.
func rate(s series, title, unit string, values []float64, scale float64, format func(float64) string) Chart {
	c := frame(title, unit)
	secs := s.Width.Seconds()
	peak := 0.0
	rates := make([]float64, len(values))
	for i, v := range values {
		rates[i] = v / scale / secs
		peak = max(peak, rates[i])
	}
	top, step := niceMax(peak)
	bw := float64(plotW) / float64(len(values))
	for i, r := range rates {
		if r <= 0 {
			continue
		}
		h := r / top * plotH
		c.Bars = append(c.Bars, Bar{
			X: padL + bw*float64(i), Y: padT + plotH - h, W: math.Max(bw-0.5, 0.5), H: h,
			Title: fmt.Sprintf("%s–%s UTC: %s %s", s.Start.Add(time.Duration(i)*s.Width).Format("15:04:05"), s.bucketEnd(i).Format("15:04:05"), format(r), unit),
		})
	}
	c.YTicks = yTicks(top, step, format)
	d := time.Duration(len(values)) * s.Width
	c.XTicks = timeTicks(s.Start, d)
	c.Desc = fmt.Sprintf("%s: peak %s %s over buckets of %s.", title, format(peak), unit, s.Width)
	return c
}

// hbars draws one horizontal bar per label (at most barChartMax, in the
// order given).
func hbars(title string, labels []string, values []int, classes []string) Chart {
	n := min(len(labels), barChartMax)
	c := Chart{Title: title, W: chartW, H: padT + n*barRowH + padB, PlotX: barLabelW, PlotY: padT, PlotW: chartW - barLabelW - padR - 60, PlotH: n * barRowH}
	peak := 0
	for _, v := range values[:n] {
		peak = max(peak, v)
	}
	top, step := niceMax(float64(peak))
	for i := range n {
		w := float64(values[i]) / top * float64(c.PlotW)
		class := ""
		if classes != nil {
			class = classes[i]
		}
		c.Bars = append(c.Bars, Bar{X: float64(c.PlotX), Y: float64(padT + i*barRowH + 3), W: math.Max(w, 1), H: barRowH - 6,
			Title: fmt.Sprintf("%s: %d", labels[i], values[i]), Class: class})
		c.YTicks = append(c.YTicks, Tick{Pos: float64(padT + i*barRowH + barRowH/2 + 4), Label: clip(labels[i], 34)})
	}
	for v := 0.0; v <= top+step/2; v += step {
		c.XTicks = append(c.XTicks, Tick{Pos: float64(c.PlotX) + v/top*float64(c.PlotW), Label: count(v)})
	}
	c.Desc = fmt.Sprintf("%s: %d bars.", title, n)
	return c
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func count(v float64) string {
	if v == math.Trunc(v) {
		return groupInt(int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// groupInt writes 50000 as 50,000.
func groupInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// humanBytes is a byte count in decimal units (as MB/s is).
func humanBytes(v float64) string {
	switch {
	case v >= 1e12:
		return fmt.Sprintf("%.2f TB", v/1e12)
	case v >= 1e9:
		return fmt.Sprintf("%.2f GB", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1f MB", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f kB", v/1e3)
	}
	return fmt.Sprintf("%.0f B", v)
}

func mbps(v float64) string {
	if v >= 10 || v == 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
