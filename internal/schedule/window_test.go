package schedule

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the machine's zone files
)

// at reads "2006-01-02 15:04" as UTC.
func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseWindowCanonical(t *testing.T) {
	cases := []struct{ spec, want string }{
		{"Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London", "Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London"},
		{"mon,TUE,wed 18:00-23:00", "Mon-Wed 18:00-23:00 UTC"},
		{"Sat 00:00-24:00; Sun 00:00-24:00", "Sat,Sun 00:00-24:00 UTC"},
		{"Fri-Mon 22:00-00:00", "Mon,Fri-Sun 22:00-24:00 UTC"},
		{"Friday 22:00-06:00 America/New_York", "Fri 22:00-06:00 America/New_York"},
		{"Sun 09:00-10:00; Wed 07:00-08:00; Mon 09:00-10:00", "Mon,Sun 09:00-10:00; Wed 07:00-08:00 UTC"},
		{"Mon,Wed,Thu,Fri 10:00-11:00", "Mon,Wed-Fri 10:00-11:00 UTC"},
		{"  Mon 10:00-11:00 ;\tTue 10:00-12:00   UTC ", "Mon 10:00-11:00; Tue 10:00-12:00 UTC"},
		{"Sun-Sat 00:00-24:00", "Mon-Sun 00:00-24:00 UTC"},
		{"Mon-Mon 23:59-00:01", "Mon 23:59-00:01 UTC"},
	}
	for _, c := range cases {
		w, err := ParseWindow(c.spec)
		if err != nil {
			t.Errorf("ParseWindow(%q): %v", c.spec, err)
			continue
		}
		if got := w.String(); got != c.want {
			t.Errorf("ParseWindow(%q).String() = %q, want %q", c.spec, got, c.want)
		}
		back, err := ParseWindow(w.String())
		if err != nil || !back.Equal(w) || back.String() != w.String() {
			t.Errorf("%q does not parse back to the same window: %v, %v", w, back, err)
		}
	}
}

func TestParseWindowErrors(t *testing.T) {
	cases := []struct{ spec, token, want string }{
		{"", "", `window "": empty spec`},
		{"   ", "", `window "   ": empty spec`},
		{"Mon 10:00-11:00;", "", `window "Mon 10:00-11:00;": clause 2 is empty`},
		{"Mon", "Mon", `window "Mon": clause "Mon" has no time range (want DAYS HH:MM-HH:MM)`},
		{"18:00-23:00 Europe/London", "18:00-23:00", `window "18:00-23:00 Europe/London": clause "18:00-23:00 Europe/London" has no days (want DAYS HH:MM-HH:MM)`},
		{"18:00-23:00", "18:00-23:00", `window "18:00-23:00": clause "18:00-23:00" has no days (want DAYS HH:MM-HH:MM)`},
		{"Mo-Fri 18:00-23:00", "Mo", `window "Mo-Fri 18:00-23:00": bad day "Mo" in "Mo-Fri" (want Mon, Tue, Wed, Thu, Fri, Sat or Sun)`},
		{"Mon-Fry 18:00-23:00", "Fry", `window "Mon-Fry 18:00-23:00": bad day "Fry" in "Mon-Fry" (want Mon, Tue, Wed, Thu, Fri, Sat or Sun)`},
		{"Sat, Sun 00:00-24:00", "Sat,", `window "Sat, Sun 00:00-24:00": missing day in "Sat,"`},
		{"Mon 18:00", "18:00", `window "Mon 18:00": bad time range "18:00" (want HH:MM-HH:MM)`},
		{"Mon 18:00-25:00", "18:00-25:00", `window "Mon 18:00-25:00": bad time "25:00" in "18:00-25:00"`},
		{"Mon 8:00-9:00", "8:00-9:00", `window "Mon 8:00-9:00": bad time "8:00" in "8:00-9:00"`},
		{"Mon 18:60-19:00", "18:60-19:00", `window "Mon 18:60-19:00": bad time "18:60" in "18:60-19:00"`},
		{"Mon 24:00-06:00", "24:00-06:00", `window "Mon 24:00-06:00": bad start "24:00" in "24:00-06:00" (24:00 may only end a range)`},
		{"Mon 10:00-10:00", "10:00-10:00", `window "Mon 10:00-10:00": empty time range "10:00-10:00"`},
		{"Mon-Sun 00:00-00:00", "00:00-00:00", `window "Mon-Sun 00:00-00:00": empty time range "00:00-00:00"`},
		{"Mon 10:00-11:00 Europe/Londn", "Europe/Londn", `window "Mon 10:00-11:00 Europe/Londn": unknown time zone "Europe/Londn"`},
		{"Mon 10:00-11:00 Local", "Local", `window "Mon 10:00-11:00 Local": time zone "Local" is not allowed (name the zone, e.g. Europe/London)`},
		{"Mon 10:00-11:00 UTC; Tue 10:00-11:00", "UTC", `window "Mon 10:00-11:00 UTC; Tue 10:00-11:00": unexpected "UTC" after "10:00-11:00" (only the last clause may name a time zone)`},
		{"Mon 10:00-11:00 UTC extra", "extra", `window "Mon 10:00-11:00 UTC extra": unexpected "extra" after time zone "UTC"`},
	}
	for _, c := range cases {
		_, err := ParseWindow(c.spec)
		if err == nil || err.Error() != c.want {
			t.Errorf("ParseWindow(%q) error\n got %v\nwant %s", c.spec, err, c.want)
			continue
		}
		var we *WindowError
		if !errors.As(err, &we) || we.Token != c.token {
			t.Errorf("ParseWindow(%q): token %q, want %q", c.spec, we.Token, c.token)
		}
	}
}

func TestParseWindowIn(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"Mon 10:00-11:00", "Mon 10:00-11:00 Europe/London"} {
		w, err := ParseWindowIn(spec, london)
		if err != nil || w.Location() != london || w.String() != "Mon 10:00-11:00 Europe/London" {
			t.Errorf("ParseWindowIn(%q) = %v, %v", spec, w, err)
		}
	}
	_, err = ParseWindowIn("Mon 10:00-11:00 Europe/Paris", london)
	if want := `window "Mon 10:00-11:00 Europe/Paris": time zone "Europe/Paris" differs from location "Europe/London"`; err == nil || err.Error() != want {
		t.Errorf("zone mismatch: %v", err)
	}
	_, err = ParseWindowIn("Mon 10:00-11:00", nil)
	if want := `window "Mon 10:00-11:00": no location`; err == nil || err.Error() != want {
		t.Errorf("nil location: %v", err)
	}
}

// London 2025: clocks go forward Sun 30 Mar 01:00 GMT -> 02:00 BST, back
// Sun 26 Oct 02:00 BST -> 01:00 GMT. New York 2025: forward Sun 9 Mar
// 02:00 EST -> 03:00 EDT, back Sun 2 Nov 02:00 EDT -> 01:00 EST.
func TestWindowNext(t *testing.T) {
	const weekends = "Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London"
	cases := []struct {
		name, spec, t, start, end string
	}{
		{"london normal Sunday", "Sun 00:30-02:30 Europe/London", "2025-03-22 12:00", "2025-03-23 00:30", "2025-03-23 02:30"},
		{"london spring forward is shorter", "Sun 00:30-02:30 Europe/London", "2025-03-29 12:00", "2025-03-30 00:30", "2025-03-30 01:30"},
		{"london fall back is longer", "Sun 00:30-02:30 Europe/London", "2025-10-25 12:00", "2025-10-25 23:30", "2025-10-26 02:30"},
		{"london start in the gap opens at 02:00 BST", "Sun 01:30-03:00 Europe/London", "2025-03-29 12:00", "2025-03-30 01:00", "2025-03-30 02:00"},
		{"london repeated hour is its first pass", "Sun 01:15-01:45 Europe/London", "2025-10-25 12:00", "2025-10-26 00:15", "2025-10-26 00:45"},
		{"london overnight into BST", "Sat 22:00-06:00 Europe/London", "2025-03-29 12:00", "2025-03-29 22:00", "2025-03-30 05:00"},
		{"london summer evening", weekends, "2025-06-06 20:00", "2025-06-06 17:00", "2025-06-06 22:00"},
		{"new york spring forward is shorter", "Sun 01:30-03:30 America/New_York", "2025-03-08 12:00", "2025-03-09 06:30", "2025-03-09 07:30"},
		{"new york start in the gap opens at 03:00 EDT", "Sun 02:30-04:00 America/New_York", "2025-03-08 12:00", "2025-03-09 07:00", "2025-03-09 08:00"},
		{"new york fall back is longer", "Sun 01:30-02:30 America/New_York", "2025-11-01 12:00", "2025-11-02 05:30", "2025-11-02 07:30"},
		{"new york overnight across fall back", "Sat 23:00-07:00 America/New_York", "2025-11-01 12:00", "2025-11-02 03:00", "2025-11-02 12:00"},
		{"overnight contains t on the next day", "Fri 22:00-06:00", "2025-03-08 03:00", "2025-03-07 22:00", "2025-03-08 06:00"},
		{"overnight after its end", "Fri 22:00-06:00", "2025-03-08 06:00", "2025-03-14 22:00", "2025-03-15 06:00"},
		{"at the start", "Mon 09:00-10:00", "2025-03-03 09:00", "2025-03-03 09:00", "2025-03-03 10:00"},
		{"at the end: next week", "Mon 09:00-10:00", "2025-03-03 10:00", "2025-03-10 09:00", "2025-03-10 10:00"},
		{"across the week boundary", "Mon 09:00-10:00", "2025-03-09 23:00", "2025-03-10 09:00", "2025-03-10 10:00"},
		{"across the year boundary", "Mon 09:00-10:00", "2025-12-29 11:00", "2026-01-05 09:00", "2026-01-05 10:00"},
		{"weekend days merge into one window", weekends, "2025-03-09 12:00", "2025-03-08 00:00", "2025-03-10 00:00"},
		{"after Friday evening comes the weekend", weekends, "2025-03-07 23:30", "2025-03-08 00:00", "2025-03-10 00:00"},
		{"overlapping clauses merge", "Fri 22:00-06:00; Sat 05:00-08:00", "2025-03-08 07:00", "2025-03-07 22:00", "2025-03-08 08:00"},
		{"always open", "Mon-Sun 18:00-06:00; Mon-Sun 06:00-18:00", "2025-03-05 12:34", "2025-03-05 12:34", "2025-03-12 12:34"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := MustParseWindow(c.spec)
			start, end, ok := w.Next(at(c.t))
			if !ok || !start.Equal(at(c.start)) || !end.Equal(at(c.end)) {
				t.Errorf("Next(%s) = %s .. %s, %v; want %s .. %s UTC", c.t, start.UTC(), end.UTC(), ok, c.start, c.end)
			}
			if got, want := w.Contains(at(c.t)), !at(c.start).After(at(c.t)); got != want {
				t.Errorf("Contains(%s) = %v, want %v", c.t, got, want)
			}
			if start.Location() != w.Location() {
				t.Errorf("Next returned times in %v, want %v", start.Location(), w.Location())
			}
		})
	}
	if _, _, ok := (Window{}).Next(at("2025-03-03 00:00")); ok {
		t.Error("the zero Window has a next window")
	}
}

func TestWindowContains(t *testing.T) {
	const weekends = "Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London"
	cases := []struct {
		spec, t string
		want    bool
	}{
		{"Sun 01:30-03:00 Europe/London", "2025-03-30 00:59", false},
		{"Sun 01:30-03:00 Europe/London", "2025-03-30 01:00", true}, // 02:00 BST, the first instant after 01:30 GMT was skipped
		{"Sun 01:30-03:00 Europe/London", "2025-03-30 01:59", true},
		{"Sun 01:30-03:00 Europe/London", "2025-03-30 02:00", false},
		{"Fri 22:00-06:00", "2025-03-07 21:59", false},
		{"Fri 22:00-06:00", "2025-03-07 22:00", true},
		{"Fri 22:00-06:00", "2025-03-08 05:59", true},
		{"Fri 22:00-06:00", "2025-03-08 06:00", false},
		{weekends, "2025-06-04 17:30", true},                            // Wed 18:30 BST
		{weekends, "2025-06-04 22:30", false},                           // Wed 23:30 BST
		{weekends, "2025-06-08 22:59", true},                            // Sun 23:59 BST
		{weekends, "2025-06-08 23:00", false},                           // Mon 00:00 BST
		{"Sun 01:00-01:30 America/New_York", "2025-11-02 05:15", true},  // 01:15 EDT
		{"Sun 01:00-01:30 America/New_York", "2025-11-02 06:15", false}, // 01:15 EST, the second pass
		{"Mon-Sun 00:00-24:00", "2025-03-30 01:00", true},
	}
	for _, c := range cases {
		if got := MustParseWindow(c.spec).Contains(at(c.t)); got != c.want {
			t.Errorf("%q.Contains(%s UTC) = %v, want %v", c.spec, c.t, got, c.want)
		}
	}
	if (Window{}).Contains(at("2025-03-03 00:00")) {
		t.Error("the zero Window contains an instant")
	}
}

func TestWindowOpensOn(t *testing.T) {
	w := MustParseWindow("Sun 01:00-01:30; Mon 20:00-21:00; Mon 06:00-07:00 Europe/London")
	cases := []struct {
		date string
		open string
		ok   bool
	}{
		{"2025-03-23", "2025-03-23 01:00", true},
		{"2025-03-30", "", false}, // 01:00-01:30 does not exist that day
		{"2025-03-31", "2025-03-31 05:00", true},
		{"2025-04-01", "", false},
	}
	for _, c := range cases {
		open, ok := w.OpensOn(MustParseDate(c.date))
		if ok != c.ok || ok && !open.Equal(at(c.open)) {
			t.Errorf("OpensOn(%s) = %s, %v; want %s, %v", c.date, open.UTC(), ok, c.open, c.ok)
		}
	}
}

func TestWindowJSON(t *testing.T) {
	type input struct {
		Org     string
		Window  Window
		Holiday Date
	}
	in := input{"RXH", MustParseWindow("sat,sun 00:00-24:00; Mon-Fri 18:00-23:00 Europe/London"), MustParseDate("2025-12-25")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Org":"RXH","Window":"Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London","Holiday":"2025-12-25"}`; string(b) != want {
		t.Fatalf("json = %s\nwant %s", b, want)
	}
	var out input
	if err := json.Unmarshal(b, &out); err != nil || !out.Window.Equal(in.Window) || out.Holiday != in.Holiday {
		t.Fatalf("round trip = %+v, %v", out, err)
	}

	b, _ = json.Marshal(input{})
	if want := `{"Org":"","Window":"","Holiday":""}`; string(b) != want {
		t.Fatalf("zero json = %s", b)
	}
	if err := json.Unmarshal(b, &out); err != nil || !out.Window.IsZero() || !out.Holiday.IsZero() {
		t.Fatalf("zero round trip = %+v, %v", out, err)
	}
	err = json.Unmarshal([]byte(`{"Window":"Mon 25:00-26:00"}`), &out)
	if err == nil || !strings.Contains(err.Error(), `bad time "25:00"`) {
		t.Fatalf("bad window in json: %v", err)
	}
}

func TestDate(t *testing.T) {
	d := MustParseDate("2024-02-28")
	if got := d.AddDays(1).String(); got != "2024-02-29" {
		t.Errorf("leap day: %s", got)
	}
	if got := d.AddDays(307); got != MustParseDate("2024-12-31") || got.AddDays(1) != MustParseDate("2025-01-01") {
		t.Errorf("year end: %s", got)
	}
	if got := MustParseDate("1969-12-31").Weekday(); got != time.Wednesday {
		t.Errorf("1969-12-31 is a %s", got)
	}
	if got := MustParseDate("2025-03-03").Weekday(); got != time.Monday {
		t.Errorf("2025-03-03 is a %s", got)
	}
	if n := MustParseDate("2025-01-01").Sub(MustParseDate("2024-01-01")); n != 366 {
		t.Errorf("Sub = %d", n)
	}
	if _, err := ParseDate("2025-13-01"); err == nil || err.Error() != `date "2025-13-01": want YYYY-MM-DD` {
		t.Errorf("bad date: %v", err)
	}
	// São Paulo's clocks went forward at midnight: 2018-11-04 began at 01:00.
	sp, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Fatal(err)
	}
	if got := MustParseDate("2018-11-04").In(sp); !got.Equal(at("2018-11-04 03:00")) {
		t.Errorf("first instant of 2018-11-04 in São Paulo = %s", got)
	}
}
