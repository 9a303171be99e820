// Package fileblob is the embedded imgd.BlobStore: files under a directory.
//
// Layout: <dir>/sha256/<first two hex digits>/<64 hex digits>, so no
// directory grows past 1/256 of the blobs; uploads are written to
// <dir>/tmp/ first. A Put writes a temporary file while hashing, fsyncs it,
// then renames it to its key's path and fsyncs the directory: readers see a
// whole blob or none, and a blob survives a crash once Put returns. A Put of
// content already stored keeps the stored file (synced again, which costs
// little) and drops its copy unsynced. Blob files are read-only (0444):
// content never changes under a key.
package fileblob

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/imgd/imgd"
)

// StaleTempAge is the age after which Open removes temporary files that a
// crashed Put left behind.
const StaleTempAge = 24 * time.Hour

// Store keeps blobs in a directory.
type Store struct {
	dir string
}

var _ imgd.BlobStore = (*Store)(nil)

// Open returns a store in dir, creating the directory when missing and
// removing stale temporary files.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir}
	for _, d := range []string{s.blobDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, unavailable("create blob directory", err)
		}
	}
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return nil, unavailable("read blob temp directory", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > StaleTempAge {
			_ = os.Remove(filepath.Join(s.tmpDir(), e.Name())) // best effort; retried at next Open
		}
	}
	return s, nil
}

func (s *Store) blobDir() string { return filepath.Join(s.dir, "sha256") }
func (s *Store) tmpDir() string  { return filepath.Join(s.dir, "tmp") }

// path returns the file of key, whose syntax ParseBlobKey checks: a valid key
// cannot name a path outside the store.
func (s *Store) path(key string) (string, error) {
	digest, err := imgd.ParseBlobKey(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.blobDir(), digest[:2], digest), nil
}

// copyBuffers holds Put's copy buffers: a new 256 KiB one per Put was about
// 1 % of imgd serve's CPU (perf), for small results mostly spent clearing it.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Put implements imgd.BlobStore.
func (s *Store) Put(ctx context.Context, r io.Reader) (key string, size int64, err error) {
	f, err := os.CreateTemp(s.tmpDir(), "put-*")
	if err != nil {
		return "", 0, unavailable("create temporary blob", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	size, err = io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, r}, *buf)
	if err != nil {
		if ctx.Err() != nil {
			return "", 0, canceled(ctx)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == tmp {
			return "", 0, unavailable("write temporary blob", err)
		}
		return "", 0, fmt.Errorf("read blob content: %w", err) // the reader's error, e.g. *http.MaxBytesError
	}
	key = imgd.BlobKey(h.Sum(nil))
	dst, _ := s.path(key)
	shard := filepath.Dir(dst)
	if s.keep(dst, shard, size) {
		f.Close()
		os.Remove(tmp)
		return key, size, nil
	}
	if err := f.Chmod(0o444); err != nil {
		return "", 0, unavailable("chmod temporary blob", err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, unavailable("sync temporary blob", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, unavailable("close temporary blob", err)
	}
	if _, err := os.Stat(shard); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(shard, 0o755); err != nil {
			return "", 0, unavailable("create blob shard", err)
		}
		if err := syncDir(s.blobDir()); err != nil {
			return "", 0, unavailable("sync blob directory", err)
		}
	}
	// Rename even when the blob appeared since keep looked: identical
	// content, and a Delete that raced with this Put cannot leave this
	// caller without its blob.
	if err := os.Rename(tmp, dst); err != nil {
		return "", 0, unavailable("store blob", err)
	}
	if err := syncDir(shard); err != nil {
		return "", 0, unavailable("sync blob shard", err)
	}
	return key, size, nil
}

// keep reports whether the blob file dst, in directory shard, already holds
// the size bytes just written under its key, durably: a Put of the same
// content then keeps it instead of syncing and renaming a second copy (an
// upload of a photo already stored costs no fsync of its bytes). A file
// under a key was renamed there only after its data was synced, but the Put
// that renamed it may not have synced its directory yet, so both are
// synced again here; for a blob already on disk that costs little. A file
// of another size (not one this store wrote) is replaced.
func (s *Store) keep(dst, shard string, size int64) bool {
	info, err := os.Stat(dst)
	if err != nil || !info.Mode().IsRegular() || info.Size() != size {
		return false
	}
	f, err := os.Open(dst)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Sync() == nil && syncDir(shard) == nil
}

// Get implements imgd.BlobStore.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	f, err := s.Open(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return f, f.Size(), nil
}

// Open implements imgd.BlobStore; the reader is an *os.File underneath.
func (s *Store) Open(ctx context.Context, key string) (imgd.BlobReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, canceled(ctx)
	}
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fileError(key, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fileError(key, err)
	}
	return &file{File: f, size: info.Size()}, nil
}

type file struct {
	*os.File
	size int64
}

func (f *file) Size() int64 { return f.size }

// Stat implements imgd.BlobStore.
func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, canceled(ctx)
	}
	p, err := s.path(key)
	if err != nil {
		return 0, err
	}
	info, err := os.Stat(p)
	if err != nil {
		return 0, fileError(key, err)
	}
	return info.Size(), nil
}

// Delete implements imgd.BlobStore. Shard directories stay: removing one
// could race with a Put renaming into it.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return canceled(ctx)
	}
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return unavailable("delete blob", err)
	}
	return nil
}

// Ping implements imgd.BlobStore: the directory must be writable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return canceled(ctx)
	}
	f, err := os.CreateTemp(s.tmpDir(), "ping-*")
	if err != nil {
		return unavailable("blob directory is not writable", err)
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return unavailable("blob directory is not writable", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func fileError(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &imgd.Error{Code: imgd.CodeNotFound, Message: fmt.Sprintf("blob %s not found", key)}
	}
	return unavailable("read blob", err)
}

func unavailable(what string, err error) error {
	return &imgd.Error{Code: imgd.CodeUnavailable, Message: "blob storage failed: " + what, Err: err}
}

func canceled(ctx context.Context) error {
	return &imgd.Error{Code: imgd.CodeCanceled, Message: "request canceled or timed out", Err: ctx.Err()}
}
