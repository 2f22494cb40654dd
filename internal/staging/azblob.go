package staging

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azure Blob defaults.
const (
	DefaultBlockSize   = 4 << 20
	MinBlockSize       = 64 << 10
	MaxBlockSize       = 100 << 20
	DefaultConcurrency = 2
	// maxBlocks is Azure's limit of committed blocks per blob.
	maxBlocks = 50000
)

// Metadata keys the Azure store records for itself (lower-case; the SDK
// returns keys capitalised, so they are compared case-insensitively).
const (
	metaSHA256 = ReservedMetadataPrefix + "sha256"
	metaSize   = ReservedMetadataPrefix + "size"
)

// DefaultTagKeys are the caller metadata keys copied into blob index tags, so
// staged items can be found with FilterBlobs (values pass through TagValue).
var DefaultTagKeys = []string{"organization", "mailbox", "reason", "kind"}

// AzureOptions configure an Azure Blob store. Exactly one of
// ConnectionString, AccountURL and ContainerSASURL selects how to connect.
type AzureOptions struct {
	// ConnectionString is a storage account connection string (Azurite's
	// included); Container names the container.
	ConnectionString string
	// AccountURL is https://<account>.blob.core.windows.net, used with
	// Credential (nil: azidentity.NewDefaultAzureCredential); Container names
	// the container.
	AccountURL string
	Credential azcore.TokenCredential
	// ContainerSASURL is a container URL with a SAS token; Container, if set,
	// must match the URL's.
	ContainerSASURL string
	Container       string

	// CreateContainer creates a missing container; otherwise a missing
	// container is an error naming it.
	CreateContainer bool
	// BlockSize is the size of staged blocks (default 4 MiB). Memory used by
	// one Put is about (Concurrency+1) × BlockSize.
	BlockSize int
	// Concurrency is how many blocks one Put stages at once (default 2).
	Concurrency int
	// TagKeys lists caller metadata keys copied into blob index tags; nil
	// means DefaultTagKeys, an empty non-nil slice disables tags (needed for
	// SAS tokens without the t permission and for accounts with a
	// hierarchical namespace).
	TagKeys []string
	// Retry overrides the SDK retry policy for throttling (429/503), 5xx and
	// network errors; zero fields take this package's defaults.
	Retry policy.RetryOptions
	// PerCallPolicies are added to the SDK pipeline (tests count requests).
	PerCallPolicies []policy.Policy
	// Transport replaces the HTTP client (nil: the SDK's default).
	Transport policy.Transporter
}

// AzureStats counts what Puts of one store did (cumulative).
type AzureStats struct {
	Puts, NoOps, SingleShots, Commits int64
	// StagedBlocks/StagedBytes were sent; ReusedBlocks/ReusedBytes were
	// already on the service (from an interrupted Put or the committed blob).
	StagedBlocks, StagedBytes, ReusedBlocks, ReusedBytes int64
}

// Azure is a Store backed by one Azure Blob Storage container.
//
// Put streams in fixed-size blocks with a transactional MD5 each, then
// commits the block list with the object's SHA-256, size and the caller's
// metadata (and index tags). Block IDs are deterministic and carry the
// block's index and MD5, so an interrupted Put resumes: blocks the service
// already holds with the same ID and size are not sent again.
type Azure struct {
	cc        *container.Client // uploads and metadata (per-try timeout)
	dl        *container.Client // downloads (no per-try timeout; the retry reader resumes)
	account   string
	container string
	url       string // container URL without any SAS query
	opts      AzureOptions
	bufs      sync.Pool

	ensureMu sync.Mutex
	ensured  bool

	stats struct {
		puts, noops, single, commits             atomic.Int64
		staged, stagedBytes, reused, reusedBytes atomic.Int64
	}
}

var _ Store = (*Azure)(nil)
var _ Restager = (*Azure)(nil)

// NewAzure builds an Azure store. It does not contact the service; the
// container is checked (and created if allowed) by EnsureContainer, which the
// first operation calls if the caller has not.
func NewAzure(o AzureOptions) (*Azure, error) {
	n := 0
	for _, s := range []string{o.ConnectionString, o.AccountURL, o.ContainerSASURL} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("staging azblob: set exactly one of connection string, account URL and container SAS URL")
	}
	if o.ContainerSASURL != "" && o.CreateContainer {
		return nil, errors.New("staging azblob: a container SAS URL cannot create its container; create it beforehand")
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BlockSize < MinBlockSize || o.BlockSize > MaxBlockSize {
		return nil, fmt.Errorf("staging azblob: block size %d outside %d..%d", o.BlockSize, MinBlockSize, MaxBlockSize)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Concurrency < 1 || o.Concurrency > 64 {
		return nil, fmt.Errorf("staging azblob: concurrency %d outside 1..64", o.Concurrency)
	}
	if o.TagKeys == nil {
		o.TagKeys = DefaultTagKeys
	}
	if len(o.TagKeys) > 9 {
		return nil, errors.New("staging azblob: at most 9 index tag keys")
	}
	r := o.Retry
	if r.MaxRetries == 0 {
		r.MaxRetries = 6
	}
	if r.RetryDelay == 0 {
		r.RetryDelay = time.Second
	}
	if r.MaxRetryDelay == 0 {
		r.MaxRetryDelay = 30 * time.Second
	}
	upRetry, dlRetry := r, r
	if upRetry.TryTimeout == 0 {
		// One try is at most one block or one small request.
		upRetry.TryTimeout = 2 * time.Minute
	}
	dlRetry.TryTimeout = 0 // a download body may take long; the retry reader resumes it
	mk := func(ro policy.RetryOptions) (*container.Client, error) {
		co := &container.ClientOptions{}
		co.Retry = ro
		co.PerCallPolicies = o.PerCallPolicies
		if o.Transport != nil {
			co.Transport = o.Transport
		}
		switch {
		case o.ConnectionString != "":
			if o.Container == "" {
				return nil, errors.New("staging azblob: container is required with a connection string")
			}
			return container.NewClientFromConnectionString(o.ConnectionString, o.Container, co)
		case o.AccountURL != "":
			if o.Container == "" {
				return nil, errors.New("staging azblob: container is required with an account URL")
			}
			cred := o.Credential
			if cred == nil {
				c, err := azidentity.NewDefaultAzureCredential(nil)
				if err != nil {
					return nil, fmt.Errorf("staging azblob: %w: %w", ErrAuth, err)
				}
				cred, o.Credential = c, c
			}
			u := strings.TrimRight(o.AccountURL, "/") + "/" + url.PathEscape(o.Container)
			return container.NewClient(u, cred, co)
		default:
			return container.NewClientWithNoCredential(o.ContainerSASURL, co)
		}
	}
	cc, err := mk(upRetry)
	if err != nil {
		return nil, fmt.Errorf("staging azblob: %w", err)
	}
	dl, err := mk(dlRetry)
	if err != nil {
		return nil, fmt.Errorf("staging azblob: %w", err)
	}
	a := &Azure{cc: cc, dl: dl, opts: o}
	a.url, a.account, a.container, err = describeContainerURL(cc.URL())
	if err != nil {
		return nil, err
	}
	if o.Container != "" && o.Container != a.container {
		return nil, fmt.Errorf("staging azblob: container %q does not match the URL's %q", o.Container, a.container)
	}
	bs := o.BlockSize
	a.bufs.New = func() any { b := make([]byte, bs); return &b }
	return a, nil
}

// describeContainerURL splits a container URL (path-style for emulators,
// https://account.blob.core.windows.net/container otherwise) and drops any
// SAS query so it can be shown.
func describeContainerURL(raw string) (clean, account, cont string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("staging azblob: container URL: %w", err)
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil || host == "localhost" || !strings.Contains(host, ".") {
		if len(segs) < 2 {
			return "", "", "", fmt.Errorf("staging azblob: %s: want http://host:port/account/container", u)
		}
		account, cont = segs[0], segs[1]
	} else {
		account, _, _ = strings.Cut(host, ".")
		cont = segs[len(segs)-1]
	}
	if cont == "" {
		return "", "", "", fmt.Errorf("staging azblob: %s names no container", u)
	}
	if c, err := url.PathUnescape(cont); err == nil {
		cont = c
	}
	return u.String(), account, cont, nil
}

// Describe implements Store.
func (a *Azure) Describe() string { return "azblob:" + a.url }

// Account and Container name where the store writes.
func (a *Azure) Account() string   { return a.account }
func (a *Azure) Container() string { return a.container }

// Stats returns cumulative counters of what Put did.
func (a *Azure) Stats() AzureStats {
	s := &a.stats
	return AzureStats{
		Puts: s.puts.Load(), NoOps: s.noops.Load(), SingleShots: s.single.Load(), Commits: s.commits.Load(),
		StagedBlocks: s.staged.Load(), StagedBytes: s.stagedBytes.Load(),
		ReusedBlocks: s.reused.Load(), ReusedBytes: s.reusedBytes.Load(),
	}
}

// EnsureContainer checks that the container exists, creating it when
// CreateContainer is set. Credentials problems surface here as ErrAuth.
func (a *Azure) EnsureContainer(ctx context.Context) error {
	a.ensureMu.Lock()
	defer a.ensureMu.Unlock()
	if a.ensured {
		return nil
	}
	if a.opts.ContainerSASURL != "" {
		// A container SAS may not read container properties (Azure and
		// Azurite answer 403); a missing container shows on first use.
		a.ensured = true
		return nil
	}
	_, err := a.cc.GetProperties(ctx, nil)
	if isNotFound(err) {
		if !a.opts.CreateContainer {
			return fmt.Errorf("staging azblob: container %q does not exist in account %s (create it, or set staging.create_container)", a.container, a.account)
		}
		_, err = a.cc.Create(ctx, nil)
		if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			err = nil
		}
	}
	if err != nil {
		return a.wrap("container check", "", err)
	}
	a.ensured = true
	return nil
}

// wrap adds context to an SDK error and classifies it.
func (a *Azure) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf("staging azblob %s", op)
	if name != "" {
		what += " " + name
	}
	where := fmt.Sprintf("account %s, container %s", a.account, a.container)
	if isAuth(err) {
		return fmt.Errorf("%s (%s): %w: %w", what, where, ErrAuth, err)
	}
	if bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return fmt.Errorf("%s: container %q does not exist in account %s: %w", what, a.container, a.account, err)
	}
	if isNotFound(err) {
		return fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return fmt.Errorf("%s (%s): %w", what, where, err)
}

func isAuth(err error) bool {
	if bloberror.HasCode(err,
		bloberror.AuthenticationFailed, bloberror.AuthorizationFailure,
		bloberror.AuthorizationPermissionMismatch, bloberror.AuthorizationProtocolMismatch,
		bloberror.AuthorizationResourceTypeMismatch, bloberror.AuthorizationServiceMismatch,
		bloberror.AuthorizationSourceIPMismatch, bloberror.InsufficientAccountPermissions,
		bloberror.InvalidAuthenticationInfo, bloberror.NoAuthenticationInformation) {
		return true
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden) {
		return true
	}
	var af *azidentity.AuthenticationFailedError
	var ar *azidentity.AuthenticationRequiredError
	if errors.As(err, &af) || errors.As(err, &ar) {
		return true
	}
	// DefaultAzureCredential with no usable source reports an unexported
	// "credential unavailable" error.
	return strings.Contains(err.Error(), "failed to acquire a token")
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return true
	}
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func (a *Azure) blob(name string) (*blockblob.Client, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	return a.cc.NewBlockBlobClient(name), nil
}

// ---- block IDs -------------------------------------------------------------

// A block ID is base64 of 24 bytes: "msb1", the block index (uint32, big
// endian) and the MD5 of the block's content. All IDs of a blob have the same
// length, as Azure requires; the same content at the same index always gets
// the same ID, so a staged block whose ID and size match holds these bytes.
const blockIDMagic = "msb1"

const rawBlockIDLen = len(blockIDMagic) + 4 + md5.Size

func blockID(index int, sum []byte) string {
	var raw [rawBlockIDLen]byte
	copy(raw[:], blockIDMagic)
	binary.BigEndian.PutUint32(raw[len(blockIDMagic):], uint32(index))
	copy(raw[len(blockIDMagic)+4:], sum)
	return base64.StdEncoding.EncodeToString(raw[:])
}

// ours reports whether id was made by blockID.
func ours(id string) bool {
	raw, err := base64.StdEncoding.DecodeString(id)
	return err == nil && len(raw) == rawBlockIDLen && string(raw[:len(blockIDMagic)]) == blockIDMagic
}

func blockSizes(bl []*blockblob.Block) map[string]int64 {
	m := make(map[string]int64, len(bl))
	for _, b := range bl {
		if b != nil && b.Name != nil && b.Size != nil && ours(*b.Name) {
			m[*b.Name] = *b.Size
		}
	}
	return m
}

// ---- metadata --------------------------------------------------------------

// encodeMetaValue keeps printable ASCII (headers carry metadata) and
// percent-encodes everything else, '%' and spaces included.
func encodeMetaValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > 0x20 && c < 0x7f && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func decodeMetaValue(s string) string {
	if v, err := url.PathUnescape(s); err == nil {
		return v
	}
	return s
}

func (a *Azure) blobMetadata(meta map[string]string, sum string, size int64) map[string]*string {
	m := make(map[string]*string, len(meta)+2)
	for k, v := range meta {
		m[k] = ptr(encodeMetaValue(v))
	}
	m[metaSHA256] = ptr(sum)
	m[metaSize] = ptr(strconv.FormatInt(size, 10))
	return m
}

// objectFrom rebuilds an Object from blob metadata; ok is false for blobs
// that this store did not write (no recorded hash).
func objectFrom(name string, md map[string]*string) (Object, bool) {
	o := Object{Name: name}
	haveSize := false
	for k, v := range md {
		if v == nil {
			continue
		}
		switch lk := strings.ToLower(k); lk {
		case metaSHA256:
			o.SHA256 = *v
		case metaSize:
			n, err := strconv.ParseInt(*v, 10, 64)
			o.Size, haveSize = n, err == nil
		default:
			if strings.HasPrefix(lk, ReservedMetadataPrefix) {
				continue
			}
			if o.Metadata == nil {
				o.Metadata = map[string]string{}
			}
			o.Metadata[lk] = decodeMetaValue(*v)
		}
	}
	return o, len(o.SHA256) == 2*sha256.Size && haveSize
}

// TagValue maps s to the characters blob index tags allow (letters, digits,
// space and + - . / : = _), replacing others with '_', at most 256 bytes.
func TagValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" +-./:=_", c) >= 0) {
			b[i] = '_'
		}
	}
	if len(b) > 256 {
		b = b[:256]
	}
	return string(b)
}

func (a *Azure) tags(meta map[string]string) map[string]string {
	if len(a.opts.TagKeys) == 0 {
		return nil
	}
	t := map[string]string{"mailshift": "staged"}
	for _, k := range a.opts.TagKeys {
		if v, ok := meta[k]; ok && v != "" {
			t[TagValue(k)] = TagValue(v)
		}
	}
	return t
}

// ---- Put -------------------------------------------------------------------

// Put implements Store. It is a no-op when the blob already records the same
// SHA-256 and size and holds exactly the blocks this content produces (or,
// for a single-request upload, the service-computed MD5 matches).
func (a *Azure) Put(ctx context.Context, name string, r io.Reader, meta map[string]string) (Object, error) {
	return a.put(ctx, name, r, meta, false)
}

// Restage implements Restager: like Put, but the blob is always rewritten and
// its committed blocks are never reused. Blocks staged but not committed by
// an interrupted Restage or Put (each verified by transactional MD5 when it
// was sent) are still reused.
func (a *Azure) Restage(ctx context.Context, name string, r io.Reader, meta map[string]string) (Object, error) {
	return a.put(ctx, name, r, meta, true)
}

type putState struct {
	exists      bool
	old         Object
	oldOK       bool
	contentMD5  []byte
	committed   map[string]int64
	committedID []string
	uncommitted map[string]int64
}

func (a *Azure) state(ctx context.Context, bb *blockblob.Client, name string, blockList bool) (putState, error) {
	var st putState
	props, err := bb.GetProperties(ctx, nil)
	switch {
	case isNotFound(err) && !bloberror.HasCode(err, bloberror.ContainerNotFound):
	case err != nil:
		return st, a.wrap("put", name, err)
	default:
		st.exists = true
		st.old, st.oldOK = objectFrom(name, props.Metadata)
		st.contentMD5 = props.ContentMD5
	}
	if !blockList {
		return st, nil
	}
	bl, err := bb.GetBlockList(ctx, blockblob.BlockListTypeAll, nil)
	if isNotFound(err) && !bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return st, nil
	}
	if err != nil {
		return st, a.wrap("put", name, err)
	}
	st.committed = blockSizes(bl.CommittedBlocks)
	for _, b := range bl.CommittedBlocks {
		if b != nil && b.Name != nil {
			st.committedID = append(st.committedID, *b.Name)
		}
	}
	st.uncommitted = blockSizes(bl.UncommittedBlocks)
	for _, b := range bl.UncommittedBlocks {
		if b != nil && b.Name != nil && !ours(*b.Name) {
			// Azure requires one ID length per blob: another writer's
			// uncommitted blocks would make ours fail. Drop them.
			if err := a.dropUncommitted(ctx, bb, name, st); err != nil {
				return st, err
			}
			st.uncommitted = nil
			break
		}
	}
	return st, nil
}

// dropUncommitted discards a blob's uncommitted blocks. Committing the
// current committed list again keeps the content, but it also replaces
// metadata, headers and tags, so those are written back; a blob without a
// committed block list that nevertheless exists (uploaded in one request)
// cannot be preserved that way and is left alone.
func (a *Azure) dropUncommitted(ctx context.Context, bb *blockblob.Client, name string, st putState) error {
	if st.exists && len(st.committedID) == 0 {
		return nil
	}
	if !st.exists {
		if _, err := bb.CommitBlockList(ctx, nil, nil); err != nil {
			return a.wrap("put (dropping foreign blocks)", name, err)
		}
		_, err := bb.Delete(ctx, nil)
		return a.wrap("put (dropping foreign blocks)", name, err)
	}
	props, err := bb.GetProperties(ctx, nil)
	if err != nil {
		return a.wrap("put", name, err)
	}
	var tags map[string]string
	if tr, err := bb.GetTags(ctx, nil); err == nil {
		tags = map[string]string{}
		for _, t := range tr.BlobTagSet {
			if t != nil && t.Key != nil && t.Value != nil {
				tags[*t.Key] = *t.Value
			}
		}
	}
	_, err = bb.CommitBlockList(ctx, st.committedID, &blockblob.CommitBlockListOptions{
		Metadata: props.Metadata,
		Tags:     tags,
		HTTPHeaders: &blob.HTTPHeaders{
			BlobContentType: props.ContentType, BlobContentMD5: props.ContentMD5,
			BlobContentEncoding: props.ContentEncoding, BlobContentLanguage: props.ContentLanguage,
			BlobContentDisposition: props.ContentDisposition, BlobCacheControl: props.CacheControl,
		},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: props.ETag}},
	})
	return a.wrap("put (dropping foreign blocks)", name, err)
}

func (a *Azure) put(ctx context.Context, name string, r io.Reader, meta map[string]string, force bool) (Object, error) {
	bb, err := a.blob(name)
	if err != nil {
		return Object{}, err
	}
	if err := ValidMetadata(meta); err != nil {
		return Object{}, err
	}
	if err := a.EnsureContainer(ctx); err != nil {
		return Object{}, err
	}
	a.stats.puts.Add(1)

	first := a.getBuf()
	n, rerr := io.ReadFull(r, *first)
	if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
		a.putBuf(first)
		return Object{}, fmt.Errorf("staging put %s: reading source: %w", name, rerr)
	}
	if rerr != nil { // the whole object fits in one request
		defer a.putBuf(first)
		return a.putSingle(ctx, bb, name, (*first)[:n], meta, force)
	}
	return a.putBlocks(ctx, bb, name, r, first, meta, force)
}

func (a *Azure) getBuf() *[]byte {
	b := a.bufs.Get().(*[]byte)
	*b = (*b)[:cap(*b)]
	return b
}

func (a *Azure) putBuf(b *[]byte) { a.bufs.Put(b) }

// Create implements Creator with one Put Blob conditional on If-None-Match:
// *, which the service refuses (409 BlobAlreadyExists) when the name exists.
func (a *Azure) Create(ctx context.Context, name string, data []byte, meta map[string]string) (Object, error) {
	if err := ValidMetadata(meta); err != nil {
		return Object{}, err
	}
	bb, err := a.blob(name)
	if err != nil {
		return Object{}, err
	}
	if err := a.EnsureContainer(ctx); err != nil {
		return Object{}, err
	}
	sum := sha256.Sum256(data)
	m5 := md5.Sum(data)
	obj := Object{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Metadata: meta}
	any := azcore.ETagAny
	_, err = bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		TransactionalValidation: blob.TransferValidationTypeMD5(m5[:]),
		Metadata:                a.blobMetadata(meta, obj.SHA256, obj.Size),
		Tags:                    a.tags(meta),
		AccessConditions:        &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &any}},
	})
	if bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
		return Object{}, fmt.Errorf("staging create %s: %w", name, ErrExists)
	}
	if err != nil {
		return Object{}, a.wrap("create", name, err)
	}
	return obj, nil
}

// putSingle uploads an object smaller than one block with one Put Blob and a
// transactional MD5; the service stores the MD5 it verified, which is what
// makes a later no-op safe.
func (a *Azure) putSingle(ctx context.Context, bb *blockblob.Client, name string, data []byte, meta map[string]string, force bool) (Object, error) {
	sum := sha256.Sum256(data)
	m5 := md5.Sum(data)
	obj := Object{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Metadata: meta}
	if !force {
		st, err := a.state(ctx, bb, name, false)
		if err != nil {
			return Object{}, err
		}
		if st.oldOK && st.old.SHA256 == obj.SHA256 && st.old.Size == obj.Size && bytes.Equal(st.contentMD5, m5[:]) {
			a.stats.noops.Add(1)
			return st.old, nil
		}
	}
	_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		TransactionalValidation: blob.TransferValidationTypeMD5(m5[:]),
		Metadata:                a.blobMetadata(meta, obj.SHA256, obj.Size),
		Tags:                    a.tags(meta),
	})
	if err != nil {
		return Object{}, a.wrap("put", name, err)
	}
	a.stats.single.Add(1)
	a.stats.staged.Add(1)
	a.stats.stagedBytes.Add(int64(len(data)))
	return obj, nil
}

func (a *Azure) putBlocks(ctx context.Context, bb *blockblob.Client, name string, r io.Reader, first *[]byte, meta map[string]string, force bool) (Object, error) {
	whole, wholeMD5 := sha256.New(), md5.New()
	st, err := a.state(ctx, bb, name, true)
	if err != nil {
		a.putBuf(first)
		return Object{}, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, a.opts.Concurrency)
	var wg sync.WaitGroup
	var ids []string
	var size int64
	matchedCommitted := 0
	staged := false

	buf := first
	n := len(*first)
loop:
	for i := 0; ; i++ {
		if i >= maxBlocks {
			a.putBuf(buf)
			cancel(fmt.Errorf("staging put %s: more than %d blocks of %d bytes", name, maxBlocks, a.opts.BlockSize))
			break
		}
		data := (*buf)[:n]
		whole.Write(data)
		wholeMD5.Write(data)
		sum := md5.Sum(data)
		id := blockID(i, sum[:])
		ids = append(ids, id)
		size += int64(n)
		switch {
		case st.uncommitted[id] == int64(n):
			a.stats.reused.Add(1)
			a.stats.reusedBytes.Add(int64(n))
			a.putBuf(buf)
		case !force && st.committed[id] == int64(n):
			if i < len(st.committedID) && st.committedID[i] == id {
				matchedCommitted++
			}
			a.stats.reused.Add(1)
			a.stats.reusedBytes.Add(int64(n))
			a.putBuf(buf)
		default:
			staged = true
			if !a.stage(ctx, cancel, &wg, sem, bb, name, buf, data, id, sum) {
				break loop
			}
		}
		if ctx.Err() != nil {
			break
		}
		buf = a.getBuf()
		var rerr error
		n, rerr = io.ReadFull(r, *buf)
		if rerr == io.EOF {
			a.putBuf(buf)
			break
		}
		if rerr != nil && rerr != io.ErrUnexpectedEOF {
			a.putBuf(buf)
			cancel(fmt.Errorf("staging put %s: reading source: %w", name, rerr))
			break
		}
		if ctx.Err() != nil {
			a.putBuf(buf)
			break
		}
		// A short read (ErrUnexpectedEOF) is the last block: the next ReadFull returns EOF.
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return Object{}, err
	}

	obj := Object{Name: name, Size: size, SHA256: hex.EncodeToString(whole.Sum(nil)), Metadata: meta}
	if !force && !staged && st.oldOK && st.old.SHA256 == obj.SHA256 && st.old.Size == obj.Size &&
		matchedCommitted == len(ids) && len(st.committedID) == len(ids) {
		a.stats.noops.Add(1)
		return st.old, nil
	}
	_, err = bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		Metadata:    a.blobMetadata(meta, obj.SHA256, obj.Size),
		Tags:        a.tags(meta),
		HTTPHeaders: &blob.HTTPHeaders{BlobContentMD5: wholeMD5.Sum(nil)},
	})
	if err != nil {
		return Object{}, a.wrap("put (commit)", name, err)
	}
	a.stats.commits.Add(1)
	return obj, nil
}

// stage sends one block in the background, holding one of Concurrency slots;
// it returns false (and releases buf) if the Put was cancelled meanwhile.
func (a *Azure) stage(ctx context.Context, cancel context.CancelCauseFunc, wg *sync.WaitGroup, sem chan struct{},
	bb *blockblob.Client, name string, buf *[]byte, data []byte, id string, sum [md5.Size]byte) bool {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		a.putBuf(buf)
		return false
	}
	wg.Add(1)
	go func() {
		defer func() { a.putBuf(buf); <-sem; wg.Done() }()
		_, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(data)), &blockblob.StageBlockOptions{
			TransactionalValidation: blob.TransferValidationTypeMD5(sum[:]),
		})
		if err != nil {
			cancel(a.wrap("put (stage block)", name, err))
			return
		}
		a.stats.staged.Add(1)
		a.stats.stagedBytes.Add(int64(len(data)))
	}()
	return true
}

// ---- reading ---------------------------------------------------------------

// Stat implements Store.
func (a *Azure) Stat(ctx context.Context, name string) (Object, error) {
	bb, err := a.blob(name)
	if err != nil {
		return Object{}, err
	}
	if err := a.EnsureContainer(ctx); err != nil {
		return Object{}, err
	}
	props, err := bb.GetProperties(ctx, nil)
	if err != nil {
		return Object{}, a.wrap("stat", name, err)
	}
	o, ok := objectFrom(name, props.Metadata)
	if !ok {
		return Object{}, fmt.Errorf("%s: blob has no %s metadata (not written by mailshift): %w", name, metaSHA256, ErrNotFound)
	}
	return o, nil
}

// Get implements Store. The reader resumes interrupted downloads (ranged,
// pinned to the blob's ETag) and fails at EOF, with an error wrapping
// ErrCorrupt, if the bytes do not match the recorded SHA-256 and size.
func (a *Azure) Get(ctx context.Context, name string) (io.ReadCloser, Object, error) {
	if err := ValidName(name); err != nil {
		return nil, Object{}, err
	}
	if err := a.EnsureContainer(ctx); err != nil {
		return nil, Object{}, err
	}
	resp, err := a.dl.NewBlockBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		return nil, Object{}, a.wrap("get", name, err)
	}
	o, ok := objectFrom(name, resp.Metadata)
	if !ok {
		resp.Body.Close()
		return nil, Object{}, fmt.Errorf("%s: blob has no %s metadata (not written by mailshift): %w", name, metaSHA256, ErrNotFound)
	}
	body := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 5})
	return &azVerifyingReader{r: body, h: sha256.New(), want: o, name: name}, o, nil
}

type azVerifyingReader struct {
	r    io.ReadCloser
	h    hash.Hash
	n    int64
	want Object
	name string
}

func (v *azVerifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.SHA256 || v.n != v.want.Size {
			return n, fmt.Errorf("staging %s: read %d bytes with hash %s, recorded %d bytes with hash %s: %w",
				v.name, v.n, got, v.want.Size, v.want.SHA256, ErrCorrupt)
		}
	}
	return n, err
}

func (v *azVerifyingReader) Close() error { return v.r.Close() }

// Delete implements Store (snapshots go with the blob).
func (a *Azure) Delete(ctx context.Context, name string) error {
	bb, err := a.blob(name)
	if err != nil {
		return err
	}
	if err := a.EnsureContainer(ctx); err != nil {
		return err
	}
	_, err = bb.Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	return a.wrap("delete", name, err)
}

// List implements Store: objects whose name starts with prefix, by name.
// Blobs this store did not write are left out.
func (a *Azure) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := a.EnsureContainer(ctx); err != nil {
		return nil, err
	}
	opts := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	var out []Object
	pager := a.cc.NewListBlobsFlatPager(opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, a.wrap("list", prefix, err)
		}
		for _, it := range page.Segment.BlobItems {
			if it == nil || it.Name == nil || (it.Deleted != nil && *it.Deleted) {
				continue
			}
			if o, ok := objectFrom(*it.Name, it.Metadata); ok {
				out = append(out, o)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func ptr[T any](v T) *T { return &v }
