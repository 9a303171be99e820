package fileblob_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/blobtest"
	"github.com/imgd/imgd/internal/blob/fileblob"
)

func open(t *testing.T, dir string) *fileblob.Store {
	t.Helper()
	s, err := fileblob.Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// Not parallel: blobtest.Run measures allocations in its first check.
func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) imgd.BlobStore {
		dir := t.TempDir()
		t.Cleanup(func() {
			if left := files(t, filepath.Join(dir, "tmp")); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
		return open(t, dir)
	})
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	b := []byte("layout")
	key, _, err := s.Put(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(t.Context(), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	digest := key[len(imgd.BlobKeyPrefix):]
	want := []string{filepath.Join(digest[:2], digest)}
	if got := files(t, filepath.Join(dir, "sha256")); len(got) != 1 || got[0] != want[0] {
		t.Errorf("files after two Puts of one content = %v, want %v", got, want)
	}
	info, err := os.Stat(filepath.Join(dir, "sha256", want[0]))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o444 {
		t.Errorf("blob file mode = %v, want read-only 0444", info.Mode().Perm())
	}
}

func TestOpenRemovesStaleTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open(t, dir)
	tmp := filepath.Join(dir, "tmp")
	stale, fresh := filepath.Join(tmp, "put-stale"), filepath.Join(tmp, "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-fileblob.StaleTempAge - time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	open(t, dir)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file still there after Open (%v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file (maybe an upload in progress) removed by Open: %v", err)
	}
	os.Remove(fresh)
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	// Faults that hold for root too (tests run as root here): a file where
	// the directory should be, and a directory removed under the store.
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := fileblob.Open(notDir)
	if got := imgd.CodeOf(err); got != imgd.CodeUnavailable {
		t.Errorf("Open(a regular file) = %v (code %q), want unavailable", err, got)
	}

	s := open(t, filepath.Join(dir, "store"))
	if err := os.RemoveAll(filepath.Join(dir, "store")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := imgd.CodeOf(s.Ping(ctx)); got != imgd.CodeUnavailable {
		t.Errorf("Ping after the directory was removed: code %q, want unavailable", got)
	}
	if _, _, err := s.Put(ctx, bytes.NewReader([]byte("x"))); imgd.CodeOf(err) != imgd.CodeUnavailable {
		t.Errorf("Put after the directory was removed = %v, want unavailable", err)
	}
}

// A Put of content already stored keeps the stored file rather than
// renaming a second copy over it (its bytes are not synced again), and
// leaves no temporary file; a file of the wrong size under the key is
// replaced.
func TestPutKeepsStoredBlob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	b := []byte("stored once")
	key, _, err := s.Put(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	digest := key[len(imgd.BlobKeyPrefix):]
	path := filepath.Join(dir, "sha256", digest[:2], digest)
	first, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(t.Context(), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	again, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(first, again) {
		t.Error("a second Put of the same content replaced the stored file")
	}
	if left := files(t, filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	// Not a file this store wrote: replaced by the content.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(t.Context(), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, b) {
		t.Errorf("blob after a Put over a damaged file = %q, %v; want %q", got, err, b)
	}
}
