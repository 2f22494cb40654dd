package codec

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestServerEncodeDecodeWithToken(t *testing.T) {
	c, _ := New("k1", map[string][]byte{"k1": key(t)})
	srv := httptest.NewServer(Handler(c, HandlerOptions{Token: "s3cret", CORSOrigins: []string{"http://127.0.0.1:8233"}}))
	defer srv.Close()

	post := func(path, auth string, ps []*commonpb.Payload) (*http.Response, []*commonpb.Payload) {
		t.Helper()
		body, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return resp, nil
		}
		var out commonpb.Payloads
		if err := protojson.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
		return resp, out.Payloads
	}

	in := jsonPayload(t, "alice@rxh.nhs.uk")
	for _, prefix := range []string{"", "/default"} {
		resp, enc := post(prefix+"/encode", "Bearer s3cret", []*commonpb.Payload{in})
		if resp.StatusCode != http.StatusOK || len(enc) != 1 || string(enc[0].Metadata[MetadataEncoding]) != Encoding {
			t.Fatalf("%s/encode: %s %v", prefix, resp.Status, enc)
		}
		resp, dec := post(prefix+"/decode", "Bearer s3cret", enc)
		if resp.StatusCode != http.StatusOK || len(dec) != 1 {
			t.Fatalf("%s/decode: %s", prefix, resp.Status)
		}
		var s string
		if err := converter.GetDefaultDataConverter().FromPayload(dec[0], &s); err != nil || s != "alice@rxh.nhs.uk" {
			t.Errorf("%s/decode: %q %v", prefix, s, err)
		}
	}
	_, enc := post("/encode", "Bearer s3cret", []*commonpb.Payload{in})
	for _, auth := range []string{"", "Bearer wrong", "s3cret", "Bearer s3cret2"} {
		if resp, _ := post("/decode", auth, enc); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %s, want 401", auth, resp.Status)
		}
	}
	if resp, _ := post("/a/b/decode", "Bearer s3cret", enc); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deeper path: %s, want 404", resp.Status)
	}
	// The remote codec client of the SDK (what the temporal CLI does) works against it.
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL + "/default",
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer s3cret")
			return nil
		},
	})
	dec, err := remote.Decode(enc)
	if err != nil || len(dec) != 1 || string(dec[0].Data) != `"alice@rxh.nhs.uk"` {
		t.Errorf("remote codec: %v %v", dec, err)
	}
}

func TestServerCORSPreflight(t *testing.T) {
	c, _ := New("k1", map[string][]byte{"k1": key(t)})
	srv := httptest.NewServer(Handler(c, HandlerOptions{CORSOrigins: []string{"http://127.0.0.1:8233"}}))
	defer srv.Close()
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight("http://127.0.0.1:8233")
	if resp.StatusCode/100 != 2 {
		t.Fatalf("preflight: %s", resp.Status)
	}
	for h, want := range map[string]string{
		"Access-Control-Allow-Origin":      "http://127.0.0.1:8233",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Headers":     "Content-Type, X-Namespace, Authorization, Authorization-Extras",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	other := preflight("http://evil.example")
	if other.StatusCode != http.StatusForbidden || other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %s, allow-origin %q", other.Status, other.Header.Get("Access-Control-Allow-Origin"))
	}

	// The actual request from the allowed origin carries the header too.
	body, _ := json.Marshal(map[string]any{"payloads": []any{}})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusOK || r2.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Errorf("POST from the UI's origin: %s, allow-origin %q", r2.Status, r2.Header.Get("Access-Control-Allow-Origin"))
	}
}

func TestServeAndClose(t *testing.T) {
	c, _ := New("k1", map[string][]byte{"k1": key(t)})
	s, err := Serve("127.0.0.1:0", c, HandlerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(s.URL()+"/encode", "application/json", bytes.NewReader([]byte(`{"payloads":[]}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("encode: %s", resp.Status)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}
