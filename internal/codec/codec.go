// Package codec encrypts the payloads mailshift's Temporal clients write:
// workflow and activity inputs and results, heartbeat details, memos, user
// metadata (summaries) and, through the failure converter, failure messages
// and stack traces. The Temporal server, its database and anyone reading
// histories without the keys see only ciphertext.
//
// Each payload is AES-256-GCM sealed whole (its metadata, such as
// encoding json/plain, included) under a fresh random 12-byte nonce. The
// encoded payload carries two metadata entries in clear:
//
//	encoding:          binary/encrypted
//	encryption-key-id: the id of the key that sealed it
//
// and its data is nonce || ciphertext || tag. The key id is also the
// GCM additional data, so a payload relabelled with another key id fails to
// open rather than being tried under the wrong key.
//
// Payloads without that encoding pass through Decode unchanged: histories
// written before encryption was turned on stay readable.
//
// Search attributes are not payloads the codec sees: the server must read
// them to index them. mailshift's hold organization codes, phases and
// counts only.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/mailshift/mailshift/internal/config"
)

const (
	// MetadataEncoding is the metadata key Temporal reads a payload's
	// encoding from.
	MetadataEncoding = converter.MetadataEncoding
	// Encoding marks a payload this codec encrypted.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the key that encrypted a payload.
	MetadataKeyID = "encryption-key-id"

	nonceSize = 12
)

// Codec is a converter.PayloadCodec. The zero value (and New with no keys)
// encrypts nothing and refuses to decode encrypted payloads with an error
// that says where the keys are missing.
type Codec struct {
	active string
	aeads  map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec encrypting with the key named active and decrypting
// with any of keys (id to 32-byte AES-256 key).
func New(active string, keys map[string][]byte) (*Codec, error) {
	c := &Codec{active: active, aeads: map[string]cipher.AEAD{}}
	for id, key := range keys {
		if len(key) != config.EncryptionKeySize {
			return nil, fmt.Errorf("codec: key %q is %d bytes, want %d", id, len(key), config.EncryptionKeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", id, err)
		}
		c.aeads[id] = aead
	}
	if _, ok := c.aeads[active]; !ok && active != "" {
		return nil, fmt.Errorf("codec: active key %q is not among the keys (%s)", active, strings.Join(c.KeyIDs(), ", "))
	}
	return c, nil
}

// FromConfig resolves the configured keys and builds the codec; nil
// configuration gives nil (no encryption).
func FromConfig(p *config.PayloadEncryption) (*Codec, error) {
	if p == nil {
		return nil, nil
	}
	keys, err := p.ResolveKeys()
	if err != nil {
		return nil, err
	}
	return New(p.ActiveKey, keys)
}

// ActiveKey is the id of the key that encrypts, "" when none does.
func (c *Codec) ActiveKey() string { return c.active }

// KeyIDs lists the ids of the keys that decrypt, sorted.
func (c *Codec) KeyIDs() []string {
	ids := make([]string, 0, len(c.aeads))
	for id := range c.aeads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Encode encrypts each payload with the active key; without one it
// returns them unchanged.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.active]
	if aead == nil {
		return payloads, nil
	}
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: marshal payload: %w", err)
		}
		buf := make([]byte, nonceSize, nonceSize+len(plain)+aead.Overhead())
		if _, err := rand.Read(buf); err != nil {
			return payloads, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				MetadataEncoding: []byte(Encoding),
				MetadataKeyID:    []byte(c.active),
			},
			Data: aead.Seal(buf, buf, plain, []byte(c.active)),
		}
	}
	return out, nil
}

// Decode decrypts the payloads this codec's format marks as encrypted and
// returns the others unchanged. A payload naming a key the codec lacks, or
// one that fails authentication, is an error naming the key id.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead := c.aeads[id]
		if aead == nil {
			return payloads, c.unknownKey(id)
		}
		data := p.GetData()
		if len(data) < nonceSize+aead.Overhead() {
			return payloads, fmt.Errorf("codec: payload encrypted with key %q is truncated (%d bytes)", id, len(data))
		}
		plain, err := aead.Open(nil, data[:nonceSize], data[nonceSize:], []byte(id))
		if err != nil {
			return payloads, fmt.Errorf("codec: payload encrypted with key %q does not decrypt: it was altered, or key %q is not the key that encrypted it", id, id)
		}
		var dp commonpb.Payload
		if err := proto.Unmarshal(plain, &dp); err != nil {
			return payloads, fmt.Errorf("codec: payload encrypted with key %q: %w", id, err)
		}
		out[i] = &dp
	}
	return out, nil
}

// ErrUnknownKey is wrapped by the error of a payload whose key is not configured.
var ErrUnknownKey = errors.New("unknown payload encryption key")

func (c *Codec) unknownKey(id string) error {
	if len(c.aeads) == 0 {
		return fmt.Errorf("codec: payload encrypted with key %q, and no payload_encryption keys are configured here: give this command the worker's configuration (MAILSHIFT_CONFIG, or --config where it has one): %w", id, ErrUnknownKey)
	}
	return fmt.Errorf("codec: payload encrypted with key %q, which is not configured (keys: %s); keep retired keys listed until no history needs them: %w",
		id, strings.Join(c.KeyIDs(), ", "), ErrUnknownKey)
}

// DataConverter is the default data converter with this codec on top.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// Apply makes a client encrypt: its data converter goes through the codec,
// and its failure converter encodes failure messages and stack traces
// (which may quote addresses) as a payload, leaving "Encoded failure" in
// clear. A nil codec leaves opts as they are.
func (c *Codec) Apply(opts *client.Options) {
	if c == nil {
		return
	}
	dc := c.DataConverter()
	opts.DataConverter = dc
	if !c.Encrypts() {
		// Keyless: decoding an encrypted payload says what is missing;
		// failures would only move into an unencrypted payload.
		return
	}
	opts.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// Encrypts reports whether c encrypts what it encodes.
func (c *Codec) Encrypts() bool { return c != nil && c.aeads[c.active] != nil }
