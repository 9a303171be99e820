package imgd

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"strings"
)

// BlobStore keeps immutable byte streams under content-addressed keys,
// "sha256/<64 lowercase hex digits>": identical content is stored once, and
// a key's content never changes. Implementations: internal/blob/fileblob (a
// directory) and internal/blob/s3blob; internal/blob/blobtest holds the
// behaviour every one must pass.
//
// Errors are *Error: CodeNotFound for a missing key, CodeInvalidArgument for
// a malformed one, CodeUnavailable when the backend cannot be reached,
// CodeCanceled when ctx ends.
type BlobStore interface {
	// Put streams r into the store, hashing it on the way, and returns its key
	// and size. It never holds the whole content in memory. The blob appears
	// atomically: readers see all of it or none, also when Puts of the same
	// content run concurrently. Putting content that is already stored keeps
	// one copy.
	Put(ctx context.Context, r io.Reader) (key string, size int64, err error)
	// Get returns the blob's content as a stream and its size. The caller
	// closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	// Open returns the blob for random access, as http.ServeContent needs for
	// Range requests. The caller closes it.
	Open(ctx context.Context, key string) (BlobReader, error)
	// Stat returns the blob's size, or CodeNotFound.
	Stat(ctx context.Context, key string) (int64, error)
	// Delete removes the blob; deleting a missing key is not an error.
	// Callers delete only keys that Store reported as unreferenced.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the store can serve requests, for /readyz.
	Ping(ctx context.Context) error
}

// BlobReader is a blob opened for random access.
type BlobReader interface {
	io.ReadSeekCloser
	Size() int64
}

// BlobKeyPrefix starts every blob key.
const BlobKeyPrefix = "sha256/"

// BlobKey returns the key of content whose SHA-256 digest is sum.
func BlobKey(sum []byte) string { return BlobKeyPrefix + hex.EncodeToString(sum) }

// ParseBlobKey returns the hex digest of a blob key, or an invalid_argument
// *Error when key is not "sha256/" followed by 64 lowercase hex digits (so a
// valid key is also a safe relative path).
func ParseBlobKey(key string) (string, error) {
	digest, ok := strings.CutPrefix(key, BlobKeyPrefix)
	if !ok || !isHexDigest(digest) {
		return "", fieldErr("", "blob key %q is not \"sha256/\" followed by 64 lowercase hex digits", key)
	}
	return digest, nil
}

// DeleteUnreferenced deletes from b the blobs among keys that s reports as
// used by no image and no result (the reference rule of Store), e.g. after
// an image was deleted or a result stored for a task canceled meanwhile.
// It tries every key and returns the errors joined; a failure only leaks a
// blob.
func DeleteUnreferenced(ctx context.Context, s Store, b BlobStore, keys ...string) error {
	unref, err := s.UnreferencedBlobs(ctx, keys)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range unref {
		if err := b.Delete(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
