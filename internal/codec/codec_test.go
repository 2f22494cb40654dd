package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/secrets"
)

func key(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func jsonPayload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	c, err := New("k1", map[string][]byte{"k1": key(t)})
	if err != nil {
		t.Fatal(err)
	}
	in := []*commonpb.Payload{jsonPayload(t, "alice@rxh.nhs.uk"), jsonPayload(t, map[string]int{"n": 1})}
	enc, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range enc {
		if got := string(p.Metadata[MetadataEncoding]); got != Encoding {
			t.Errorf("payload %d: encoding %q", i, got)
		}
		if got := string(p.Metadata[MetadataKeyID]); got != "k1" {
			t.Errorf("payload %d: key id %q", i, got)
		}
		if len(p.Metadata) != 2 {
			t.Errorf("payload %d: metadata in clear beyond encoding and key id: %v", i, p.Metadata)
		}
		// The original metadata (json/plain) is inside the ciphertext.
		if bytes.Contains(p.Data, []byte("alice")) || bytes.Contains(p.Data, []byte("json/plain")) {
			t.Errorf("payload %d: plaintext visible", i)
		}
	}
	// A fresh nonce each time: the same value never encrypts the same way.
	again, _ := c.Encode(in[:1])
	if bytes.Equal(again[0].Data, enc[0].Data) {
		t.Error("two encodings of one payload are identical")
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(in[i], dec[i]) {
			t.Errorf("payload %d: %v after the round trip, want %v", i, dec[i], in[i])
		}
	}
	var s string
	if err := c.DataConverter().FromPayload(mustEncode(t, c, "bob"), &s); err != nil || s != "bob" {
		t.Errorf("data converter: %q, %v", s, err)
	}
}

func mustEncode(t *testing.T, c *Codec, v any) *commonpb.Payload {
	t.Helper()
	p, err := c.DataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRotation(t *testing.T) {
	k1, k2 := key(t), key(t)
	old, err := New("k1", map[string][]byte{"k1": k1})
	if err != nil {
		t.Fatal(err)
	}
	byK1, _ := old.Encode([]*commonpb.Payload{jsonPayload(t, "written before rotation")})

	rotated, err := New("k2", map[string][]byte{"k1": k1, "k2": k2})
	if err != nil {
		t.Fatal(err)
	}
	byK2, _ := rotated.Encode([]*commonpb.Payload{jsonPayload(t, "written after rotation")})
	if got := string(byK2[0].Metadata[MetadataKeyID]); got != "k2" {
		t.Fatalf("after rotation payloads name key %q, want k2", got)
	}
	dec, err := rotated.Decode(append(byK1, byK2...))
	if err != nil {
		t.Fatal(err)
	}
	var a, b string
	_ = converter.GetDefaultDataConverter().FromPayload(dec[0], &a)
	_ = converter.GetDefaultDataConverter().FromPayload(dec[1], &b)
	if a != "written before rotation" || b != "written after rotation" {
		t.Errorf("decoded %q, %q", a, b)
	}

	// The old codec cannot read the new key's payloads, and says which key.
	_, err = old.Decode(byK2)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"k2"`) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestKeylessCodec(t *testing.T) {
	full, _ := New("k1", map[string][]byte{"k1": key(t)})
	enc, _ := full.Encode([]*commonpb.Payload{jsonPayload(t, "x")})
	var none Codec
	if none.Encrypts() {
		t.Error("a keyless codec encrypts")
	}
	plain := []*commonpb.Payload{jsonPayload(t, "x")}
	if out, err := none.Encode(plain); err != nil || out[0] != plain[0] {
		t.Errorf("keyless encode changed the payload: %v", err)
	}
	_, err := none.Decode(enc)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "--config") {
		t.Errorf("keyless decode of an encrypted payload: %v", err)
	}
}

func TestTamperedCiphertextFails(t *testing.T) {
	c, _ := New("k1", map[string][]byte{"k1": key(t), "k2": key(t)})
	enc, _ := c.Encode([]*commonpb.Payload{jsonPayload(t, "alice")})
	for name, tamper := range map[string]func(p *commonpb.Payload){
		"flipped bit":    func(p *commonpb.Payload) { p.Data[len(p.Data)/2] ^= 1 },
		"truncated":      func(p *commonpb.Payload) { p.Data = p.Data[:10] },
		"other key's id": func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k2") },
	} {
		p := proto.Clone(enc[0]).(*commonpb.Payload)
		tamper(p)
		if _, err := c.Decode([]*commonpb.Payload{p}); err == nil {
			t.Errorf("%s: decoded", name)
		} else if !strings.Contains(err.Error(), "key") {
			t.Errorf("%s: error does not name the key: %v", name, err)
		}
	}
}

func TestUnencodedPassesThrough(t *testing.T) {
	c, _ := New("k1", map[string][]byte{"k1": key(t)})
	in := []*commonpb.Payload{jsonPayload(t, "recorded before encryption"), {Metadata: map[string][]byte{"encoding": []byte("binary/null")}}}
	out, err := c.Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if out[i] != in[i] {
			t.Errorf("payload %d changed", i)
		}
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	if _, err := New("k1", map[string][]byte{"k1": make([]byte, 16)}); err == nil || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("short key: %v", err)
	}
	if _, err := New("k3", map[string][]byte{"k1": key(t)}); err == nil || !strings.Contains(err.Error(), `"k3"`) {
		t.Errorf("missing active key: %v", err)
	}
}

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	k1 := filepath.Join(dir, "k1")
	if err := os.WriteFile(k1, []byte(base64.StdEncoding.EncodeToString(key(t))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAILSHIFT_TEST_K2", base64.StdEncoding.EncodeToString(key(t)))
	t.Setenv("MAILSHIFT_TEST_SHORT", base64.StdEncoding.EncodeToString(make([]byte, 31)))
	t.Setenv("MAILSHIFT_TEST_HEX", strings.Repeat("ab", 32)) // hex is valid base64 of 48 bytes
	t.Setenv("MAILSHIFT_TEST_JUNK", "not base64!")
	pe := &config.PayloadEncryption{ActiveKey: "k2", Keys: []config.EncryptionKey{
		{ID: "k1", Key: secrets.Ref("file:" + k1)},
		{ID: "k2", Key: "env:MAILSHIFT_TEST_K2"},
	}}
	c, err := FromConfig(pe)
	if err != nil {
		t.Fatal(err)
	}
	if c.ActiveKey() != "k2" || strings.Join(c.KeyIDs(), ",") != "k1,k2" {
		t.Errorf("active %q keys %v", c.ActiveKey(), c.KeyIDs())
	}
	if c, err := FromConfig(nil); c != nil || err != nil {
		t.Errorf("no configuration: %v, %v", c, err)
	}

	pe.Keys = append(pe.Keys,
		config.EncryptionKey{ID: "short", Key: "env:MAILSHIFT_TEST_SHORT"},
		config.EncryptionKey{ID: "hex", Key: "env:MAILSHIFT_TEST_HEX"},
		config.EncryptionKey{ID: "junk", Key: "env:MAILSHIFT_TEST_JUNK"},
		config.EncryptionKey{ID: "gone", Key: "env:MAILSHIFT_TEST_UNSET"})
	_, err = FromConfig(pe)
	if err == nil {
		t.Fatal("bad keys accepted")
	}
	for _, want := range []string{"keys[short].key", "31 bytes, want 32", "keys[hex].key", "48 bytes", "keys[junk].key", "does not hold base64", "keys[gone].key", "not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), strings.Repeat("ab", 32)) {
		t.Error("the error quotes key material")
	}
}

// BenchmarkEncodeDecode: one 1 KiB payload sealed and opened.
func BenchmarkEncodeDecode(b *testing.B) {
	k := make([]byte, 32)
	c, _ := New("k1", map[string][]byte{"k1": k})
	p := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: bytes.Repeat([]byte("x"), 1024)}}
	b.SetBytes(1024)
	for b.Loop() {
		enc, err := c.Encode(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
