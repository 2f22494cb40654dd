package main

import "flag"

// parseAnyOrder parses flags wherever they stand among the positional
// arguments ("approve RXH --approver alice" as well as "approve --approver
// alice RXH") and returns the positional ones in order. The flag package
// alone stops at the first positional argument and would take the flags
// after it as more positional arguments.
func parseAnyOrder(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
