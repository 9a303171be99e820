// Package blobtest is the conformance suite of imgd.BlobStore: every backend
// runs Run (river's riverdrivertest is the model).
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/imgd/imgd"
)

// Open returns an empty store owned by t (removed in t.Cleanup).
type Open func(t *testing.T) imgd.BlobStore

// LargeSize is the size of the content streamed through Put and Get by the
// large-content check, and MaxAllocated the most either may allocate doing
// so: a store must stream, not buffer a blob.
const (
	LargeSize    = 64 << 20
	MaxAllocated = 24 << 20
)

// Run runs the conformance suite. Call it from a test that is not parallel:
// the large-content check measures allocations, so it runs first and alone
// (within its package); the other checks then run in parallel, each on a
// store of its own.
func Run(t *testing.T, open Open) {
	t.Run("LargeContentStreams", func(t *testing.T) { testLarge(t, open) })
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"PutGet", testPutGet},
		{"Dedupe", testDedupe},
		{"Range", testRange},
		{"Delete", testDelete},
		{"NotFoundAndInvalidKeys", testNotFound},
		{"ConcurrentPutsOfSameContent", testConcurrentSame},
		{"PutReaderError", testPutReaderError},
		{"PutCanceled", testPutCanceled},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// Content returns n deterministic pseudo-random bytes for seed.
func Content(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// KeyOf is the key a content-addressed store must give b.
func KeyOf(b []byte) string {
	sum := sha256.Sum256(b)
	return imgd.BlobKey(sum[:])
}

func mustPut(t *testing.T, s imgd.BlobStore, b []byte) string {
	t.Helper()
	key, size, err := s.Put(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put(%d bytes): %v", len(b), err)
	}
	if key != KeyOf(b) || size != int64(len(b)) {
		t.Fatalf("Put(%d bytes) = %s, %d; want %s, %d", len(b), key, size, KeyOf(b), len(b))
	}
	return key
}

func mustGet(t *testing.T, s imgd.BlobStore, key string) []byte {
	t.Helper()
	rc, size, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s): read: %v", key, err)
	}
	if int64(len(b)) != size {
		t.Errorf("Get(%s) size %d, but read %d bytes", key, size, len(b))
	}
	return b
}

func wantCode(t *testing.T, call string, err error, want imgd.Code) {
	t.Helper()
	if got := imgd.CodeOf(err); got != want {
		t.Errorf("%s error = %v (code %q), want code %q", call, err, got, want)
	}
}

func testPutGet(t *testing.T, open Open) {
	s := open(t)
	tests := []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"text", []byte("hello, imgd")},
		{"1 MiB + 1", Content(1, 1<<20+1)},
	}
	for _, tt := range tests {
		key := mustPut(t, s, tt.content)
		if got := mustGet(t, s, key); !bytes.Equal(got, tt.content) {
			t.Errorf("Get(Put(%s)) returned %d different bytes", tt.name, len(got))
		}
		size, err := s.Stat(t.Context(), key)
		if err != nil || size != int64(len(tt.content)) {
			t.Errorf("Stat(Put(%s)) = %d, %v; want %d", tt.name, size, err, len(tt.content))
		}
	}
}

func testDedupe(t *testing.T, open Open) {
	s := open(t)
	b := Content(2, 100_000)
	k1 := mustPut(t, s, b)
	k2 := mustPut(t, s, b)
	if k1 != k2 {
		t.Errorf("Put of identical content returned keys %s and %s", k1, k2)
	}
	other := append(bytes.Clone(b), 0)
	if k3 := mustPut(t, s, other); k3 == k1 {
		t.Errorf("Put of different content returned the same key %s", k3)
	}
	if got := mustGet(t, s, k1); !bytes.Equal(got, b) {
		t.Error("content changed after a second Put of it")
	}
}

func testRange(t *testing.T, open Open) {
	s := open(t)
	b := Content(3, 10_000)
	key := mustPut(t, s, b)
	f, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer f.Close()
	if f.Size() != int64(len(b)) {
		t.Errorf("Open(%s).Size() = %d, want %d", key, f.Size(), len(b))
	}
	reads := []struct {
		offset int64
		whence int
		n      int
		want   []byte
	}{
		{100, io.SeekStart, 50, b[100:150]},
		{-10, io.SeekEnd, 10, b[len(b)-10:]},
		{0, io.SeekStart, 1, b[:1]},
		{5000, io.SeekStart, 5000, b[5000:]},
	}
	for _, r := range reads {
		pos, err := f.Seek(r.offset, r.whence)
		if err != nil {
			t.Fatalf("Seek(%d, %d): %v", r.offset, r.whence, err)
		}
		got := make([]byte, r.n)
		if _, err := io.ReadFull(f, got); err != nil {
			t.Fatalf("read %d bytes at %d: %v", r.n, pos, err)
		}
		if !bytes.Equal(got, r.want) {
			t.Errorf("read %d bytes at %d: wrong content", r.n, pos)
		}
	}

	// The way the API serves content: http.ServeContent with Range headers.
	ranges := []struct {
		header     string
		wantStatus int
		wantBody   []byte
	}{
		{"bytes=10-19", http.StatusPartialContent, b[10:20]},
		{"bytes=9990-", http.StatusPartialContent, b[9990:]},
		{"bytes=-5", http.StatusPartialContent, b[len(b)-5:]},
		{"", http.StatusOK, b},
		{"bytes=20000-", http.StatusRequestedRangeNotSatisfiable, nil},
	}
	for _, r := range ranges {
		f, err := s.Open(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/content", nil)
		if r.header != "" {
			req.Header.Set("Range", r.header)
		}
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "", time.Time{}, f)
		f.Close()
		if rec.Code != r.wantStatus {
			t.Errorf("ServeContent(Range %q) status = %d, want %d", r.header, rec.Code, r.wantStatus)
			continue
		}
		if r.wantBody != nil && !bytes.Equal(rec.Body.Bytes(), r.wantBody) {
			t.Errorf("ServeContent(Range %q) body: %d wrong bytes", r.header, rec.Body.Len())
		}
	}
}

func testDelete(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	keep := mustPut(t, s, []byte("keep"))
	key := mustPut(t, s, []byte("delete me"))
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete(%s): %v", key, err)
	}
	_, _, err := s.Get(ctx, key)
	wantCode(t, "Get(deleted)", err, imgd.CodeNotFound)
	_, err = s.Stat(ctx, key)
	wantCode(t, "Stat(deleted)", err, imgd.CodeNotFound)
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("Delete(already deleted) = %v, want nil", err)
	}
	if got := mustGet(t, s, keep); string(got) != "keep" {
		t.Errorf("another blob changed after a Delete: %q", got)
	}
	mustPut(t, s, []byte("delete me")) // and it can be stored again
	if got := mustGet(t, s, key); string(got) != "delete me" {
		t.Errorf("Get after re-Put = %q", got)
	}
}

func testNotFound(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	absent := KeyOf([]byte("never stored"))
	invalid := []string{"", "sha256/", "sha256/abc", "md5/" + absent[7:], "sha256/" + absent[7:] + "0",
		"SHA256/" + absent[7:], "sha256/../../../../etc/passwd", absent[7:]}
	type call struct {
		name string
		fn   func(key string) error
	}
	calls := []call{
		{"Get", func(k string) error { _, _, err := s.Get(ctx, k); return err }},
		{"Open", func(k string) error { _, err := s.Open(ctx, k); return err }},
		{"Stat", func(k string) error { _, err := s.Stat(ctx, k); return err }},
	}
	for _, c := range calls {
		wantCode(t, c.name+"(absent key)", c.fn(absent), imgd.CodeNotFound)
		for _, k := range invalid {
			wantCode(t, fmt.Sprintf("%s(%q)", c.name, k), c.fn(k), imgd.CodeInvalidArgument)
		}
	}
	for _, k := range invalid {
		wantCode(t, fmt.Sprintf("Delete(%q)", k), s.Delete(ctx, k), imgd.CodeInvalidArgument)
	}
}

// Concurrent Puts of the same content all succeed with the same key, and a
// reader racing with them sees the whole blob or none of it.
func testConcurrentSame(t *testing.T, open Open) {
	s := open(t)
	b := Content(4, 1<<20)
	key := KeyOf(b)
	const writers, readers = 8, 4
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			k, n, err := s.Put(t.Context(), bytes.NewReader(b))
			if err != nil || k != key || n != int64(len(b)) {
				t.Errorf("concurrent Put = %s, %d, %v; want %s, %d, nil", k, n, err, key, len(b))
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for range 20 {
				rc, _, err := s.Get(t.Context(), key)
				if imgd.CodeOf(err) == imgd.CodeNotFound {
					continue
				}
				if err != nil {
					t.Errorf("Get during concurrent Puts: %v", err)
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, b) {
					t.Errorf("Get during concurrent Puts read %d bytes (%v), want all %d", len(got), err, len(b))
					return
				}
			}
		})
	}
	wg.Wait()
	if got := mustGet(t, s, key); !bytes.Equal(got, b) {
		t.Error("content wrong after concurrent Puts")
	}
}

var errBoom = errors.New("client went away")

// failingReader yields n bytes, then errBoom.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errBoom
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func testPutReaderError(t *testing.T, open Open) {
	s := open(t)
	_, _, err := s.Put(t.Context(), &failingReader{n: 100_000})
	if !errors.Is(err, errBoom) {
		t.Errorf("Put(reader failing after 100000 bytes) = %v, want it to wrap the reader's error", err)
	}
	// The bytes read before the failure were not stored under their key.
	_, err = s.Stat(t.Context(), KeyOf(make([]byte, 100_000)))
	wantCode(t, "Stat(partial upload)", err, imgd.CodeNotFound)
	mustPut(t, s, []byte("still works"))
}

// cancelingReader cancels its context after the first read.
type cancelingReader struct {
	cancel context.CancelFunc
	r      io.Reader
}

func (r *cancelingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.cancel()
	return n, err
}

func testPutCanceled(t *testing.T, open Open) {
	s := open(t)
	b := Content(5, 4<<20)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, _, err := s.Put(ctx, &cancelingReader{cancel: cancel, r: bytes.NewReader(b)})
	wantCode(t, "Put(ctx canceled mid-stream)", err, imgd.CodeCanceled)
	_, err = s.Stat(t.Context(), KeyOf(b))
	wantCode(t, "Stat(canceled upload)", err, imgd.CodeNotFound)
}

func testPing(t *testing.T, open Open) {
	s := open(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// stream is a reader of n pseudo-random bytes that never holds them all.
type stream struct {
	r *rand.ChaCha8
	n int64
}

func (s *stream) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	_, _ = s.r.Read(p)
	s.n -= int64(len(p))
	return len(p), nil
}

func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

func testLarge(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	h := sha256.New()
	src := io.TeeReader(&stream{r: rand.NewChaCha8([32]byte{6}), n: LargeSize}, h)

	before := allocated()
	key, size, err := s.Put(ctx, src)
	putAlloc := allocated() - before
	if err != nil {
		t.Fatalf("Put(%d MiB stream): %v", LargeSize>>20, err)
	}
	if want := imgd.BlobKey(h.Sum(nil)); key != want || size != LargeSize {
		t.Fatalf("Put(%d MiB stream) = %s, %d; want %s, %d", LargeSize>>20, key, size, want, LargeSize)
	}
	if putAlloc > MaxAllocated {
		t.Errorf("Put of %d MiB allocated %d MiB, want at most %d MiB: it must stream", LargeSize>>20, putAlloc>>20, MaxAllocated>>20)
	}

	before = allocated()
	rc, n, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	copied, err := io.CopyBuffer(got, rc, make([]byte, 64<<10))
	rc.Close()
	getAlloc := allocated() - before
	if err != nil || copied != LargeSize || n != LargeSize {
		t.Fatalf("Get(%s) = %d bytes (size %d), %v; want %d", key, copied, n, err, LargeSize)
	}
	if hex.EncodeToString(got.Sum(nil)) != key[len(imgd.BlobKeyPrefix):] {
		t.Errorf("Get(%s) returned other content", key)
	}
	if getAlloc > MaxAllocated {
		t.Errorf("Get of %d MiB allocated %d MiB, want at most %d MiB: it must stream", LargeSize>>20, getAlloc>>20, MaxAllocated>>20)
	}
}
