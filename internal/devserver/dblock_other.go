//go:build !unix

package devserver

import "os"

// lockDBFile is a no-op where flock is missing: only servers of one process
// are kept off each other's database (claimDB's in-process set).
func lockDBFile(string) (*os.File, error) { return nil, nil }
