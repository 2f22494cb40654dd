package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseAnyOrder(t *testing.T) {
	for _, args := range [][]string{
		{"RXH", "--approver", "alice", "--reason", "CAB-9"},
		{"--approver", "alice", "RXH", "--reason", "CAB-9"},
		{"--approver=alice", "--reason", "CAB-9", "RXH"},
	} {
		fs := flag.NewFlagSet("approve", flag.ContinueOnError)
		who := fs.String("approver", "", "")
		why := fs.String("reason", "", "")
		pos, err := parseAnyOrder(fs, args)
		if err != nil || !slices.Equal(pos, []string{"RXH"}) || *who != "alice" || *why != "CAB-9" {
			t.Fatalf("%v: positional %v, approver %q, reason %q, err %v", args, pos, *who, *why, err)
		}
	}
	fs := flag.NewFlagSet("skip-mailbox", flag.ContinueOnError)
	op := fs.String("operator", "", "")
	pos, err := parseAnyOrder(fs, []string{"RXH", "a@b.example", "--operator", "ops"})
	if err != nil || !slices.Equal(pos, []string{"RXH", "a@b.example"}) || *op != "ops" {
		t.Fatalf("two positionals: %v %q %v", pos, *op, err)
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseAnyOrder(fs, []string{"RXH", "--nope"}); err == nil {
		t.Fatal("an unknown flag after the code is still an error")
	}
}
