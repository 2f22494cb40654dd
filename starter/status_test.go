package main

import (
	"reflect"
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	o, err := parseStatus([]string{"RXH", "--phase", "Completed", "--wave=w'1", "KLM", "--output", "json", "--campaigns=false"})
	if err != nil {
		t.Fatal(err)
	}
	if o.filter.Phase != "Completed" || o.filter.Wave != "w'1" || !reflect.DeepEqual(o.filter.Codes, []string{"RXH", "KLM"}) || o.output != "json" || o.campaigns || o.watch != 0 {
		t.Errorf("%+v", o)
	}
	for args, want := range map[string]time.Duration{"--watch": 2 * time.Second, "--watch=5": 5 * time.Second, "--watch=1m": time.Minute} {
		o, err := parseStatus([]string{args})
		if err != nil || o.watch != want || !o.campaigns || o.output != "text" {
			t.Errorf("%s: %+v, %v", args, o, err)
		}
	}
	for _, bad := range [][]string{{"--watch=0"}, {"--watch=500ms"}, {"--watch=x"}, {"--output", "yaml"}, {"--watch", "--output", "json"}} {
		if _, err := parseStatus(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
