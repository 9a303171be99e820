// Package s3blob is the scale-out imgd.BlobStore: objects in an
// S3-compatible bucket, reached with minio-go.
//
// Layout: <prefix>sha256/<64 hex digits> for blobs, <prefix>tmp/<random>
// for uploads in progress. The key of a blob is its SHA-256, known only once
// the whole content has gone by, and Put must stream, so Put uploads to a
// temporary object while hashing (one PUT for content shorter than PartSize,
// a multipart upload of PartSize parts beyond), then copies it server-side to
// its key and deletes the temporary object. S3 makes an object visible whole
// or not at all, so readers never see part of a blob. When the key already
// exists the copy is skipped: the content is identical by construction, and
// it saves rewriting a large object. (A Delete racing with such a Put can
// remove the blob just after Put saw it; that window exists in every store,
// fileblob's too, between Put returning and the caller recording the
// reference, and callers delete only blobs the Store reports unreferenced.)
//
// A Put cut short by a crash leaves a temporary object or an incomplete
// multipart upload (whose parts are stored, and billed, but invisible to
// listings). Open removes both when older than StaleTempAge, as fileblob does
// with its temporary files. That works on every S3 implementation and needs
// no bucket-configuration permission, which a lifecycle rule would; operators
// who can may add one as well (expire <prefix>tmp/ after a day, abort
// incomplete multipart uploads after a day).
//
// Limits: the multipart upload of unknown length uses PartSize parts, at most
// 10,000 of them, so a blob is at most ~48 GiB; blobs over 5 GiB (the S3
// CopyObject limit) are copied with a multipart copy (ComposeObject).
package s3blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/imgd/imgd"
)

const (
	// StaleTempAge is the age after which Open removes the temporary
	// objects and incomplete uploads of crashed Puts. An upload in
	// progress is far younger.
	StaleTempAge = 24 * time.Hour
	// PartSize is the size of a multipart upload's parts (the S3 minimum),
	// and the most a Put holds in memory, twice: its first-part buffer and
	// minio-go's part buffer.
	PartSize = 5 << 20
	// maxCopySize is the largest object S3's CopyObject copies in one call.
	maxCopySize = 5 << 30
	// pingTimeout bounds Ping when the caller's context has no earlier
	// deadline: /readyz must answer quickly when S3 hangs.
	pingTimeout = 5 * time.Second
	// openTimeout bounds the bucket check in New.
	openTimeout = 15 * time.Second
	// cleanupTimeout bounds removing a temporary object after the request
	// ended, and the sweep of stale ones in New.
	cleanupTimeout = 30 * time.Second
	// attempts is how many times minio-go sends a request that failed on
	// the network or with a 5xx (its default, 10, makes an outage take
	// tens of seconds to report).
	attempts = 3
)

// Store keeps blobs in an S3 bucket.
type Store struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string
	endpoint string // for messages
}

var _ imgd.BlobStore = (*Store)(nil)

// Open parses rawURL (see ParseURL), takes credentials from the
// environment, and returns a store on its bucket (see New).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	c, err := ParseURL(rawURL, os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(ctx, c)
}

// New returns a store on c's bucket. It checks that the bucket exists
// (unavailable when the endpoint cannot be reached, invalid_argument when
// the bucket is missing or the credentials are refused), then removes the
// temporary objects that crashed Puts left, best effort.
func New(ctx context.Context, c Config) (*Store, error) {
	tr, err := minio.DefaultTransport(c.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	client, err := minio.New(c.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		Secure:       c.Secure,
		Region:       c.Region,
		BucketLookup: c.Lookup,
		Transport:    tr,
		MaxRetries:   attempts,
	})
	if err != nil {
		return nil, imgd.WrapError(imgd.CodeInvalidArgument, err, fmt.Sprintf("s3 endpoint %s: %v", c.endpointURL(), err))
	}
	s := &Store{client: client, core: minio.Core{Client: client}, bucket: c.Bucket, prefix: c.Prefix, endpoint: c.endpointURL()}

	cctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	ok, err := client.BucketExists(cctx, c.Bucket)
	if err != nil {
		switch code := minio.ToErrorResponse(err).Code; code {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
			return nil, imgd.WrapError(imgd.CodeInvalidArgument, err, fmt.Sprintf(
				"s3 bucket %q at %s: access refused (%s): check %s, %s and the region", c.Bucket, s.endpoint, code, EnvAccessKeyID, EnvSecretAccessKey))
		}
		if ctx.Err() != nil {
			return nil, canceled(ctx)
		}
		return nil, imgd.WrapError(imgd.CodeUnavailable, err, fmt.Sprintf("s3 endpoint %s is unreachable or failing", s.endpoint))
	}
	if !ok {
		return nil, imgd.Errorf(imgd.CodeInvalidArgument, "s3 bucket %q does not exist at %s", c.Bucket, s.endpoint)
	}
	sctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	s.removeStaleTemps(sctx, time.Now().Add(-StaleTempAge))
	return s, nil
}

func (s *Store) tmpPrefix() string { return s.prefix + "tmp/" }

// object returns the object name of key, whose syntax ParseBlobKey checks.
func (s *Store) object(key string) (string, error) {
	if _, err := imgd.ParseBlobKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// removeStaleTemps deletes temporary objects and incomplete multipart
// uploads started before cutoff. Errors are ignored: the next Open retries.
func (s *Store) removeStaleTemps(ctx context.Context, cutoff time.Time) {
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.tmpPrefix(), Recursive: true}) {
		if obj.Err != nil {
			break
		}
		if obj.LastModified.Before(cutoff) {
			_ = s.client.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{})
		}
	}
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, s.tmpPrefix(), true) {
		if up.Err != nil {
			break
		}
		if up.Initiated.Before(cutoff) {
			_ = s.core.AbortMultipartUpload(ctx, s.bucket, up.Key, up.UploadID)
		}
	}
}

// firstParts holds the first PartSize bytes of Puts: most blobs fit, and go
// up in one PUT of known length from a reused buffer.
var firstParts = sync.Pool{New: func() any { b := make([]byte, PartSize); return &b }}

// Put implements imgd.BlobStore.
func (s *Store) Put(ctx context.Context, r io.Reader) (key string, size int64, err error) {
	if err := ctx.Err(); err != nil {
		return "", 0, canceled(ctx)
	}
	src := &source{ctx: ctx, r: r, h: sha256.New()}
	bufp := firstParts.Get().(*[]byte)
	defer firstParts.Put(bufp)
	n, rerr := io.ReadFull(src, *bufp)
	var body io.Reader
	length := int64(-1) // streams in a multipart upload
	switch rerr {
	case io.EOF, io.ErrUnexpectedEOF:
		body, length = bytes.NewReader((*bufp)[:n]), int64(n)
	case nil:
		body = io.MultiReader(bytes.NewReader((*bufp)[:n]), src)
	default:
		return "", 0, src.failure(ctx)
	}

	tmp := s.tmpPrefix() + randomName()
	// Whatever happens next, the temporary object goes: after the copy, or
	// after a failure (minio-go aborts a failed multipart upload itself).
	defer s.removeTemp(ctx, tmp)
	// Content-MD5 instead of a signed SHA-256 payload: the server still
	// rejects a part corrupted on the way, and over http minio-go's chunked
	// payload signing would allocate another part-sized buffer per part.
	_, err = s.client.PutObject(ctx, s.bucket, tmp, body, length, minio.PutObjectOptions{
		PartSize:             PartSize,
		ContentType:          "application/octet-stream",
		DisableContentSha256: true,
		SendContentMd5:       true,
	})
	if err != nil {
		if src.err != nil || ctx.Err() != nil {
			return "", 0, src.failure(ctx)
		}
		return "", 0, s.fail(ctx, "upload blob", "", err)
	}
	size = src.n
	key = imgd.BlobKey(src.h.Sum(nil))
	dst := s.prefix + key

	info, err := s.client.StatObject(ctx, s.bucket, dst, minio.StatObjectOptions{})
	switch {
	case err == nil && info.Size == size:
		return key, size, nil // stored already: same hash, same content
	case err != nil && !isNotFound(err):
		return "", 0, s.fail(ctx, "check blob", key, err)
	}
	dstOpts := minio.CopyDestOptions{Bucket: s.bucket, Object: dst}
	srcOpts := minio.CopySrcOptions{Bucket: s.bucket, Object: tmp}
	if size <= maxCopySize {
		_, err = s.client.CopyObject(ctx, dstOpts, srcOpts)
	} else {
		_, err = s.client.ComposeObject(ctx, dstOpts, srcOpts)
	}
	if err != nil {
		return "", 0, s.fail(ctx, "store blob", key, err)
	}
	return key, size, nil
}

func (s *Store) removeTemp(ctx context.Context, tmp string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = s.client.RemoveObject(ctx, s.bucket, tmp, minio.RemoveObjectOptions{}) // if it fails, Open sweeps it later
}

func randomName() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// source is the content of a Put: it hashes and counts what goes by, stops
// when ctx ends, and keeps the reader's error apart from S3's.
type source struct {
	ctx context.Context
	r   io.Reader
	h   hash.Hash
	n   int64
	err error // the first error of r other than io.EOF, or ctx's
}

func (s *source) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// failure is the error of a Put whose source failed.
func (s *source) failure(ctx context.Context) error {
	if ctx.Err() != nil {
		return canceled(ctx)
	}
	return fmt.Errorf("read blob content: %w", s.err) // the reader's error, e.g. *http.MaxBytesError
}

// Get implements imgd.BlobStore: one GET, streamed.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, canceled(ctx)
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, s.fail(ctx, "read blob", key, err)
	}
	return &stream{ReadCloser: body, s: s, ctx: ctx, key: key}, info.Size, nil
}

// stream maps the errors of a GET's body.
type stream struct {
	io.ReadCloser
	s   *Store
	ctx context.Context
	key string
}

func (r *stream) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.fail(r.ctx, "read blob", r.key, err)
	}
	return n, err
}

// Open implements imgd.BlobStore. It sends a HEAD now, for the size and
// not_found; each Read after a Seek sends a ranged GET. The reader uses ctx
// until it is closed.
func (s *Store) Open(ctx context.Context, key string) (imgd.BlobReader, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, canceled(ctx)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail(ctx, "open blob", key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, s.fail(ctx, "open blob", key, err)
	}
	return &object{obj: obj, size: info.Size, s: s, ctx: ctx, key: key}, nil
}

type object struct {
	obj  *minio.Object
	size int64
	s    *Store
	ctx  context.Context
	key  string
}

func (o *object) Size() int64 { return o.size }

func (o *object) Read(p []byte) (int, error) {
	n, err := o.obj.Read(p)
	return n, o.mapErr(err)
}

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.obj.ReadAt(p, off)
	return n, o.mapErr(err)
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	n, err := o.obj.Seek(offset, whence)
	return n, o.mapErr(err)
}

func (o *object) Close() error { return o.obj.Close() }

func (o *object) mapErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return o.s.fail(o.ctx, "read blob", o.key, err)
}

// Stat implements imgd.BlobStore.
func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	name, err := s.object(key)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, canceled(ctx)
	}
	info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return 0, s.fail(ctx, "stat blob", key, err)
	}
	return info.Size, nil
}

// Delete implements imgd.BlobStore. S3 reports success for a missing key.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return canceled(ctx)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return s.fail(ctx, "delete blob", key, err)
	}
	return nil
}

// Ping implements imgd.BlobStore: the bucket must answer a HEAD within
// pingTimeout (or ctx's deadline, if earlier).
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return canceled(ctx)
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	ok, err := s.client.BucketExists(pctx, s.bucket)
	if err != nil {
		return s.fail(ctx, "ping bucket", "", err)
	}
	if !ok {
		return imgd.Errorf(imgd.CodeUnavailable, "blob storage failed: s3 bucket %q no longer exists at %s", s.bucket, s.endpoint)
	}
	return nil
}

func isNotFound(err error) bool {
	e := minio.ToErrorResponse(err)
	return e.Code == minio.NoSuchKey || (e.StatusCode == http.StatusNotFound && e.Code != minio.NoSuchBucket)
}

// fail translates an S3 call's error: canceled when the caller's ctx ended
// (a timeout of our own is unavailable), not_found for a missing key (when
// there is one), unavailable for the rest, since network errors, 5xx, a
// deleted bucket or refused credentials all mean the store cannot serve.
func (s *Store) fail(ctx context.Context, what, key string, err error) error {
	if ctx.Err() != nil {
		return canceled(ctx)
	}
	if key != "" && isNotFound(err) {
		return &imgd.Error{Code: imgd.CodeNotFound, Message: fmt.Sprintf("blob %s not found", key), Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		what += ": timed out"
	}
	return &imgd.Error{Code: imgd.CodeUnavailable, Message: "blob storage failed: " + what, Err: err}
}

func canceled(ctx context.Context) error {
	return &imgd.Error{Code: imgd.CodeCanceled, Message: "request canceled or timed out", Err: ctx.Err()}
}
