package devserver

import (
	"context"
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

func TestZZLeakDebug(t *testing.T) {
	s, err := Start(context.Background(), Options{FrontendAddr: "127.0.0.1:0", UIAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	s.Stop()
	time.Sleep(3 * time.Second)
	f, _ := os.Create("/tmp/devserver-goroutines.txt")
	pprof.Lookup("goroutine").WriteTo(f, 2)
	f.Close()
}
