package s3blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/blobtest"
	"github.com/imgd/imgd/internal/blob/s3test"
)

// newStore opens a store on a fresh prefix of srv's bucket, and checks at
// the end of t that no temporary object or incomplete upload remains.
func newStore(t *testing.T, srv *s3test.Server) *Store {
	t.Helper()
	c, err := ParseURL(srv.URL(t), s3test.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), c)
	if err != nil {
		t.Fatalf("New(%s): %v", c, err)
	}
	t.Cleanup(func() {
		if left := s.list(t, "tmp/"); len(left) != 0 {
			t.Errorf("temporary objects left behind: %v", left)
		}
		if left := s.uploads(t); len(left) != 0 {
			t.Errorf("incomplete multipart uploads left behind: %v", left)
		}
	})
	return s
}

// list returns the names, relative to the store's prefix, of the objects
// under the store's prefix+sub.
func (s *Store) list(t *testing.T, sub string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + sub, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list %s%s: %v", s.prefix, sub, obj.Err)
		}
		out = append(out, strings.TrimPrefix(obj.Key, s.prefix))
	}
	return out
}

func (s *Store) uploads(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if up.Err != nil {
			t.Fatalf("list incomplete uploads under %s: %v", s.prefix, up.Err)
		}
		out = append(out, up.Key)
	}
	return out
}

// Not parallel: blobtest.Run measures allocations in its first check.
func TestConformance(t *testing.T) {
	srv := s3test.StartServer(t)
	blobtest.Run(t, func(t *testing.T) imgd.BlobStore { return newStore(t, srv) })
}

// The 64 MiB check of blobtest bounds what a Put allocates; this one bounds
// what it holds: the live heap, sampled as the content is read, never grows
// by anything near the content's size.
func TestPutHeapStaysFlat(t *testing.T) {
	srv := s3test.StartServer(t)
	s := newStore(t, srv)
	const size = 20 << 20
	// Twice: buffers pooled by earlier tests survive one GC.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	src := &sampler{r: io.LimitReader(rand.NewChaCha8([32]byte{9}), size), base: base}
	key, n, err := s.Put(t.Context(), src)
	if err != nil || n != size {
		t.Fatalf("Put(20 MiB) = %s, %d, %v", key, n, err)
	}
	// Two part buffers (ours and minio-go's) of PartSize, plus slack.
	const limit = 2*PartSize + 6<<20
	if src.peak > limit {
		t.Errorf("live heap grew by %d MiB during a 20 MiB Put, want at most %d MiB: Put must stream", src.peak>>20, limit>>20)
	}
	t.Logf("heap growth during Put: peak %.1f MiB over %d samples", float64(src.peak)/(1<<20), src.samples)
	if got, err := s.Stat(t.Context(), key); err != nil || got != size {
		t.Errorf("Stat(%s) = %d, %v; want %d", key, got, err, size)
	}
}

// sampler reads r at most 64 KiB at a time and records the largest growth
// of the live heap over base, measured after a GC every MiB.
type sampler struct {
	r        io.Reader
	base     uint64
	read     int
	peak     uint64
	samples  int
	nextMark int
}

func (s *sampler) Read(p []byte) (int, error) {
	n, err := s.r.Read(p[:min(len(p), 64<<10)])
	s.read += n
	if s.read >= s.nextMark {
		s.nextMark += 1 << 20
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > s.base && m.HeapAlloc-s.base > s.peak {
			s.peak = m.HeapAlloc - s.base
		}
		s.samples++
	}
	return n, err
}

func TestLayout(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	s := newStore(t, srv)
	small, large := []byte("layout"), blobtest.Content(7, PartSize+123) // one PUT, and multipart
	var want []string
	for _, b := range [][]byte{small, large, small, large} {
		key, _, err := s.Put(t.Context(), bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(want, key) {
			want = append(want, key)
		}
		// The posix backend keeps an object as the file DIR/BUCKET/NAME.
		got, err := os.ReadFile(filepath.Join(srv.Dir, s3test.Bucket, s.prefix+key))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("object %s%s on the server's disk: %d bytes, %v; want the %d bytes put", s.prefix, key, len(got), err, len(b))
		}
	}
	slices.Sort(want)
	if got := s.list(t, ""); !slices.Equal(got, want) {
		t.Errorf("objects after Puts of two contents twice = %v, want %v", got, want)
	}
}

var errBoom = errors.New("client went away")

// failAfter yields n pseudo-random bytes, then errBoom.
type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBoom
	}
	k, _ := f.r.Read(p[:min(len(p), f.n)])
	f.n -= k
	return k, nil
}

// A Put that fails, in the first part (one PUT) or later (multipart
// upload), leaves no object under the prefix, no incomplete upload, and
// returns the reader's error or canceled.
func TestPutFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	for _, n := range []int{0, 100_000, PartSize, 2*PartSize + 1} {
		s := newStore(t, srv)
		_, _, err := s.Put(t.Context(), &failAfter{r: rand.NewChaCha8([32]byte{1}), n: n})
		if !errors.Is(err, errBoom) || imgd.CodeOf(err) != imgd.CodeInternal {
			t.Errorf("Put(reader failing after %d bytes) = %v (code %q), want the reader's error, code internal", n, err, imgd.CodeOf(err))
		}
		if got := s.list(t, ""); len(got) != 0 {
			t.Errorf("objects after a Put failing after %d bytes: %v, want none", n, got)
		}
		if got := s.uploads(t); len(got) != 0 {
			t.Errorf("incomplete uploads after a Put failing after %d bytes: %v, want none", n, got)
		}
	}

	s := newStore(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	src := &cancelAfter{r: io.LimitReader(rand.NewChaCha8([32]byte{2}), 4*PartSize), n: 2*PartSize + 10, cancel: cancel}
	_, _, err := s.Put(ctx, src)
	if got := imgd.CodeOf(err); got != imgd.CodeCanceled {
		t.Errorf("Put canceled in its third part = %v (code %q), want canceled", err, got)
	}
	if got := s.list(t, ""); len(got) != 0 {
		t.Errorf("objects after a canceled Put: %v, want none", got)
	}
	if got := s.uploads(t); len(got) != 0 {
		t.Errorf("incomplete uploads after a canceled Put: %v, want none", got)
	}
}

// cancelAfter calls cancel once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
	return k, err
}

// Concurrent multipart Puts of one content: all return its key, one object
// remains, no temporary object.
func TestConcurrentLargePuts(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	s := newStore(t, srv)
	b := blobtest.Content(8, PartSize+PartSize/2)
	want := blobtest.KeyOf(b)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			key, n, err := s.Put(t.Context(), bytes.NewReader(b))
			if err != nil || key != want || n != int64(len(b)) {
				t.Errorf("concurrent Put = %s, %d, %v; want %s, %d", key, n, err, want, len(b))
			}
		})
	}
	wg.Wait()
	if got := s.list(t, ""); !slices.Equal(got, []string{want}) {
		t.Errorf("objects after concurrent Puts = %v, want [%s]", got, want)
	}
}

// Random access on a multipart blob: ReadAt and Seek+Read across the part
// boundary, past the end.
func TestOpenRandomAccess(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	s := newStore(t, srv)
	b := blobtest.Content(9, PartSize+5000)
	key, _, err := s.Put(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		t.Fatalf("Open returned %T, not an io.ReaderAt", f)
	}
	got := make([]byte, 2000)
	if n, err := ra.ReadAt(got, PartSize-1000); n != 2000 || err != nil || !bytes.Equal(got, b[PartSize-1000:PartSize+1000]) {
		t.Errorf("ReadAt(2000 bytes across the part boundary) = %d, %v, equal %v", n, err, bytes.Equal(got, b[PartSize-1000:PartSize+1000]))
	}
	if pos, err := f.Seek(-500, io.SeekEnd); err != nil || pos != int64(len(b))-500 {
		t.Fatalf("Seek(-500, end) = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, b[len(b)-500:]) {
		t.Errorf("ReadAll after Seek(-500, end) = %d bytes, %v; want the last 500", len(rest), err)
	}
	if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read at the end = %d, %v; want 0, EOF", n, err)
	}
}

// When S3 goes away every call reports unavailable, quickly enough for
// /readyz, and New refuses to start.
func TestServerDown(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	s := newStoreNoCleanupCheck(t, srv)
	ctx := t.Context()
	key, _, err := s.Put(ctx, strings.NewReader("before the outage"))
	if err != nil {
		t.Fatal(err)
	}
	// A download under way when the server dies ends with unavailable, not
	// with a short read passed off as the whole blob.
	const bigSize = 32 << 20
	big, _, err := s.Put(ctx, io.LimitReader(rand.NewChaCha8([32]byte{4}), bigSize))
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	n, err := io.Copy(io.Discard, rc)
	if got := imgd.CodeOf(err); got != imgd.CodeUnavailable || n >= bigSize-64<<10 {
		t.Errorf("reading a Get's stream after the server stopped: %d more bytes, %v (code %q); want a short read ending unavailable", n, err, got)
	}

	start := time.Now()
	err = s.Ping(ctx)
	if got := imgd.CodeOf(err); got != imgd.CodeUnavailable {
		t.Errorf("Ping with the server down = %v (code %q), want unavailable", err, got)
	}
	t.Logf("Ping: %v in %v", err, time.Since(start))
	if d := time.Since(start); d > pingTimeout+time.Second {
		t.Errorf("Ping with the server down took %v, want at most %v", d, pingTimeout+time.Second)
	}
	calls := []struct {
		name string
		fn   func() error
	}{
		{"Get", func() error { _, _, err := s.Get(ctx, key); return err }},
		{"Open", func() error { _, err := s.Open(ctx, key); return err }},
		{"Stat", func() error { _, err := s.Stat(ctx, key); return err }},
		{"Delete", func() error { return s.Delete(ctx, key) }},
		{"Put", func() error { _, _, err := s.Put(ctx, strings.NewReader("during")); return err }},
		{"New", func() error {
			c, err := ParseURL(srv.URL(t), s3test.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(ctx, c)
			return err
		}},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.fn()
		t.Logf("%s: %v in %v", c.name, err, time.Since(start))
		if got := imgd.CodeOf(err); got != imgd.CodeUnavailable {
			t.Errorf("%s with the server down: code %q, want unavailable", c.name, got)
		}
	}
	// A caller's ctx ending is canceled, not unavailable.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := imgd.CodeOf(s.Ping(cctx)); got != imgd.CodeCanceled {
		t.Errorf("Ping(canceled ctx): code %q, want canceled", got)
	}
}

func newStoreNoCleanupCheck(t *testing.T, srv *s3test.Server) *Store {
	t.Helper()
	c, err := ParseURL(srv.URL(t), s3test.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	ctx := t.Context()

	c, err := ParseURL(strings.Replace(srv.URL(t), "s3://"+s3test.Bucket, "s3://no-such-bucket", 1), s3test.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(ctx, c)
	if got, msg := imgd.CodeOf(err), imgd.MessageOf(err); got != imgd.CodeInvalidArgument || !strings.Contains(msg, `s3 bucket "no-such-bucket" does not exist at `+srv.Endpoint) {
		t.Errorf("New(missing bucket) = %v (code %q), want invalid_argument naming the bucket and endpoint", err, got)
	}

	c, err = ParseURL(srv.URL(t), func(name string) string {
		if name == EnvSecretAccessKey {
			return "wrong-secret-value"
		}
		return s3test.Getenv(name)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(ctx, c)
	if got, msg := imgd.CodeOf(err), imgd.MessageOf(err); got != imgd.CodeInvalidArgument || !strings.Contains(msg, "access refused") || !strings.Contains(msg, EnvSecretAccessKey) {
		t.Errorf("New(wrong secret) = %v (code %q), want invalid_argument saying access was refused", err, got)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("New(wrong secret) error shows the secret: %v", err)
	}
}

// New removes temporary objects older than StaleTempAge (a crashed Put's)
// and keeps younger ones (a Put in progress elsewhere); the sweep also
// aborts stale incomplete multipart uploads.
func TestNewRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	prefix := s3test.Prefix(t)
	c, err := ParseURL(srv.URLWithPrefix(prefix), s3test.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, name := range []string{"stale", "fresh"} {
		if _, err := s.client.PutObject(ctx, s.bucket, s.tmpPrefix()+name, strings.NewReader("partial"), 7, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The posix backend reports a file's mtime as the object's LastModified.
	old := time.Now().Add(-StaleTempAge - time.Hour)
	if err := os.Chtimes(filepath.Join(srv.Dir, s3test.Bucket, s.tmpPrefix()+"stale"), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := s.list(t, "tmp/"); !slices.Equal(got, []string{"tmp/fresh"}) {
		t.Errorf("temporary objects after New = %v, want [tmp/fresh]", got)
	}

	if _, err := s.core.NewMultipartUpload(ctx, s.bucket, s.tmpPrefix()+"crashed", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := s.uploads(t); len(got) != 1 {
		t.Fatalf("incomplete uploads = %v, want the one just started", got)
	}
	s.removeStaleTemps(ctx, time.Now().Add(-time.Hour))
	if got := s.uploads(t); len(got) != 1 {
		t.Errorf("incomplete uploads after a sweep of those older than an hour = %v, want the young one kept", got)
	}
	s.removeStaleTemps(ctx, time.Now().Add(time.Minute))
	if got := s.uploads(t); len(got) != 0 {
		t.Errorf("incomplete uploads after a sweep of all = %v, want none", got)
	}
	if got := s.list(t, "tmp/"); len(got) != 0 {
		t.Errorf("temporary objects after a sweep of all = %v, want none", got)
	}
}
