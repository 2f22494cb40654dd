package transfer

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/zeebo/xxh3"
)

// Digest is what the copy knows of one message it appended: its source
// UID, the UID the target gave it (0 without UIDPLUS), its size and the
// hash of the bytes as they streamed to the target.
type Digest struct {
	UID       uint32 `json:"u"`
	TargetUID uint32 `json:"t,omitempty"`
	Size      int64  `json:"n"`
	Sum       string `json:"h"`
	// Content is the ContentDigest of the message, recorded for a
	// re-rendering target, whose bytes cannot be compared with Sum.
	Content string `json:"c,omitempty"`
	// Keywords are the source's keywords that a target without keywords
	// did not get (Target.NoKeywords): a note for the report.
	Keywords []string `json:"k,omitempty"`
	// Hash is Sum's algorithm, from its segment (not stored per digest).
	Hash string `json:"-"`
}

// FolderDigests are the digests of one folder's pass, under the source and
// target UIDVALIDITY they hold for.
type FolderDigests struct {
	Source            string `json:"source"`
	Target            string `json:"target"`
	UIDValidity       uint32 `json:"uidvalidity"`
	TargetUIDValidity uint32 `json:"target_uidvalidity"`
	// Hash is the digests' algorithm; "" is HashSHA256, what segments
	// written before it was recorded hold.
	Hash    string   `json:"hash,omitempty"`
	Digests []Digest `json:"digests"`
}

// Digest hash algorithms.
const (
	HashSHA256 = "sha256"
	HashXXH3   = "xxh3-128"
)

// DigestHash is the algorithm the copy hashes with. A digest detects a body
// that changed by accident (a target that re-wrote, truncated or corrupted
// it), not a forgery by someone who can write to the target, so a 128-bit
// non-cryptographic hash does; XXH3 costs the worker about a tenth of the
// CPU of SHA-256, which was 5% of a first migration's machine CPU.
const DigestHash = HashXXH3

// NewHash returns a hash for algo ("" is HashSHA256), or nil for an
// unknown one.
func NewHash(algo string) hash.Hash {
	switch algo {
	case HashXXH3:
		return xxh3.New128()
	case HashSHA256, "":
		return sha256.New()
	}
	return nil
}

// Level is how deep a validation looks.
type Level string

const (
	// LevelMetadata compares source and target from FETCH metadata alone
	// (UID, size, INTERNALDATE, flags, Message-ID): no body is read, and no
	// digest either (the size it compares is the one the copy recorded).
	LevelMetadata Level = "metadata"
	// LevelSample is LevelMetadata plus the target bodies of a few
	// messages per folder (Sample), hashed and compared with the digests
	// the copy recorded: no source body is read.
	LevelSample Level = "sample"
	// LevelFull reads and hashes every body on both sides.
	LevelFull Level = "full"
)

// Levels are the validation levels, shallowest first.
var Levels = []Level{LevelMetadata, LevelSample, LevelFull}

// DefaultLevel is the level a policy that names none validates at.
const DefaultLevel = LevelMetadata

// DefaultSample is how many messages per folder LevelSample reads.
const DefaultSample = 10

// LevelCovers: a validation at level had with sample hadSample looked at
// least as deep as one at want with wantSample would. A sample checks
// different messages each time only if it is larger, so a smaller or equal
// sample is covered; full covers every sample.
func LevelCovers(had Level, hadSample int, want Level, wantSample int) bool {
	hi, wi := slices.Index(Levels, had), slices.Index(Levels, want)
	if hi < 0 || wi < 0 || hi < wi {
		return false
	}
	if had == LevelSample && want == LevelSample {
		return hadSample >= wantSample
	}
	return true
}

// ParseLevel checks a level's name; "" is DefaultLevel.
func ParseLevel(s string) (Level, error) {
	switch l := Level(strings.ToLower(strings.TrimSpace(s))); l {
	case "":
		return DefaultLevel, nil
	case LevelMetadata, LevelSample, LevelFull:
		return l, nil
	}
	return "", fmt.Errorf("validation level %q: want metadata, sample or full", s)
}

// IndexDigests groups digest segments by source folder.
func IndexDigests(segs []FolderDigests) map[string][]FolderDigests {
	out := map[string][]FolderDigests{}
	for _, s := range segs {
		out[s.Source] = append(out[s.Source], s)
	}
	return out
}

// byTargetUID returns the digests valid for the folder's current numbering
// on both sides, by target UID; later segments win.
func byTargetUID(segs []FolderDigests, uidValidity, targetUIDValidity uint32) map[uint32]Digest {
	out := map[uint32]Digest{}
	for _, s := range segs {
		if s.UIDValidity != uidValidity || s.TargetUIDValidity != targetUIDValidity {
			continue
		}
		for _, d := range s.Digests {
			if d.TargetUID != 0 {
				d.Hash = s.Hash
				out[d.TargetUID] = d
			}
		}
	}
	return out
}

// sampleOf picks up to n target UIDs of have deterministically: ordered by
// a hash of the folder and the UID, so the same folder and ledger always
// give the same sample and it spreads over the folder's whole life.
func sampleOf(folder string, have map[uint32]Digest, n int) []uint32 {
	uids := make([]uint32, 0, len(have))
	for u := range have {
		uids = append(uids, u)
	}
	key := func(u uint32) uint64 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], u)
		sum := sha256.Sum256(append([]byte(folder+"\x00"), b[:]...))
		return binary.BigEndian.Uint64(sum[:8])
	}
	slices.SortFunc(uids, func(a, b uint32) int {
		ka, kb := key(a), key(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return int(a) - int(b)
	})
	if len(uids) > n {
		uids = uids[:n]
	}
	slices.Sort(uids)
	return uids
}
