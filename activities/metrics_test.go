package activities

import (
	"context"
	"net"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/metrics"
)

// gathered returns the value of name's series with the given labels.
func gathered(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.Metric {
			got := map[string]string{}
			for _, l := range s.Label {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			return value(s), true
		}
	}
	return 0, false
}

func value(s *dto.Metric) float64 {
	if s.Counter != nil {
		return s.Counter.GetValue()
	}
	if s.Histogram != nil {
		return float64(s.Histogram.GetSampleCount())
	}
	return s.Gauge.GetValue()
}

// Connection slots and failed logins and connections show in the metrics,
// labelled by endpoint and fault kind.
func TestConnectionMetrics(t *testing.T) {
	srv, err := estate.StartServer(estate.ServerOptions{Name: "source"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddUser("alice", "right"); err != nil {
		t.Fatal(err)
	}
	// A loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "imap://" + ln.Addr().String()
	ln.Close()

	m := metrics.New()
	a := &Activities{Endpoints: map[string]*Endpoint{}, Metrics: m}
	opts := imapconn.Options{AllowPlaintext: true}
	for name, url := range map[string]string{"good": srv.URL(), "dead": dead} {
		addr, err := imapconn.ParseAddress(url)
		if err != nil {
			t.Fatal(err)
		}
		a.Endpoints[name] = NewEndpoint(name, addr, 2, opts, func(user string) (imapconn.Login, error) {
			pw := "right"
			if user == "mallory" {
				pw = "wrong"
			}
			return imapconn.Login{Username: "alice", Password: pw}, nil
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, release, err := a.dialSide(ctx, MailboxRef{Address: "alice@example.org", SourceEndpoint: "good", SourceUser: "alice"}, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := gathered(t, m, metrics.ConnectionsInUse, map[string]string{"endpoint": "good"}); v != 1 {
		t.Fatalf("connections in use on good = %v, want 1", v)
	}
	if c == nil {
		t.Fatal("no connection")
	}
	release()
	if v, _ := gathered(t, m, metrics.ConnectionsInUse, map[string]string{"endpoint": "good"}); v != 0 {
		t.Fatalf("connections in use on good after release = %v, want 0", v)
	}
	// The mailbox's next pass takes the idle connection: no second login.
	logins := func() float64 {
		v, _ := gathered(t, m, metrics.EndpointLoginSeconds, map[string]string{"endpoint": "good"})
		return v
	}
	before := logins()
	again, release, err := a.dialSide(ctx, MailboxRef{Address: "alice@example.org", SourceEndpoint: "good", SourceUser: "alice"}, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if again != c || logins() != before {
		t.Fatalf("the next pass logged in again (%v logins before, %v after; same connection: %v)", before, logins(), again == c)
	}
	if v, _ := gathered(t, m, metrics.ConnectionsInUse, map[string]string{"endpoint": "good"}); v != 1 {
		t.Fatalf("connections in use on good after reuse = %v, want 1", v)
	}
	release()

	if _, _, err := a.dialSide(ctx, MailboxRef{Address: "m@example.org", SourceEndpoint: "good", SourceUser: "mallory"}, true, true); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if v, ok := gathered(t, m, metrics.IMAPErrors, map[string]string{"endpoint": "good", "kind": imapconn.KindAuth}); !ok || v != 1 {
		t.Fatalf("auth errors on good = %v (%v), want 1", v, ok)
	}
	if _, _, err := a.dialSide(ctx, MailboxRef{Address: "alice@example.org", SourceEndpoint: "dead", SourceUser: "alice"}, true, true); err == nil {
		t.Fatal("connected to a closed port")
	}
	if v, ok := gathered(t, m, metrics.IMAPErrors, map[string]string{"endpoint": "dead", "kind": metrics.KindNetwork}); !ok || v != 1 {
		t.Fatalf("network errors on dead = %v (%v), want 1", v, ok)
	}
	for _, ep := range []string{"good", "dead"} {
		if v, _ := gathered(t, m, metrics.ConnectionsInUse, map[string]string{"endpoint": ep}); v != 0 {
			t.Fatalf("connections in use on %s after failures = %v, want 0", ep, v)
		}
	}
}
