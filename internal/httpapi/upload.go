package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/events"
)

// readUpload reads an upload into memory, failing with too_large as soon
// as it grows past max bytes: the client learns it while still sending,
// and no more than max+1 bytes are ever held. One upload is held at a time
// per request; the engine needs the whole file to read its header (TIFF and
// EXIF point anywhere in the file) and the blob store streams it from here.
//
// The buffer comes from uploadBuffers and goes back with release: uploads
// of photos are megabytes, and growing a fresh buffer for each (doubling,
// copying, the runtime zeroing every new block) cost ~5 % of the server's
// CPU in make bench-service.
func readUpload(r io.Reader, max int64) (data []byte, release func(), _ error) {
	buf := uploadBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	release = func() {
		if buf.Cap() <= maxPooledUpload {
			uploadBuffers.Put(buf)
		}
	}
	data, err := fillUpload(buf, r, max)
	if err != nil {
		release()
		return nil, nil, err
	}
	return data, release, nil
}

// maxPooledUpload bounds the buffers kept for reuse; larger uploads use a
// buffer once.
const maxPooledUpload = 16 << 20

var uploadBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func fillUpload(buf *bytes.Buffer, r io.Reader, max int64) ([]byte, error) {
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, imgd.Errorf(imgd.CodeTooLarge, "the upload is larger than %d bytes", max)
		}
		return nil, imgd.WrapError(imgd.CodeInvalidArgument, err, "reading the upload failed: "+err.Error())
	}
	if n > max {
		return nil, imgd.Errorf(imgd.CodeTooLarge, "the upload is larger than %d bytes", max)
	}
	if n == 0 {
		// Zero bytes are no image: the same verdict as the engine's.
		return nil, imgd.Errorf(imgd.CodeUnsupported, "the file is empty: not an image")
	}
	return buf.Bytes(), nil
}

// ingest stores an uploaded original: it reads r (at most the engine's
// input limit), checks the image from its bytes (format sniffed, header
// read, limits checked), stores the blob and creates the image row. An
// image that is refused leaves nothing behind: the blob is stored only
// after the checks, and removed again when the row cannot be created and
// nothing else uses it. With idemKey, a repeated upload returns the first
// image and created == false.
func (s *Server) ingest(ctx context.Context, r io.Reader, filename, idemKey string) (_ imgd.Image, created bool, _ error) {
	data, release, err := readUpload(r, s.engine.Limits().MaxInputBytes)
	if err != nil {
		return imgd.Image{}, false, err
	}
	defer release()
	info, err := s.engine.Probe(data)
	if err != nil {
		return imgd.Image{}, false, err
	}
	// The blob store hashes what it stores; its key is the content's
	// SHA-256, so hashing here too would only double the work.
	key, size, err := s.blobs.Put(ctx, bytes.NewReader(data))
	if err != nil {
		return imgd.Image{}, false, err
	}
	digest, err := imgd.ParseBlobKey(key)
	if err != nil || size != int64(len(data)) {
		return imgd.Image{}, false, fmt.Errorf("blob store returned %s (%d bytes) for %d bytes", key, size, len(data))
	}
	im, created, err := s.store.CreateImage(ctx, imgd.Image{
		Filename:       filename,
		MediaType:      info.MediaType,
		Format:         info.Format,
		Width:          info.Width,
		Height:         info.Height,
		Frames:         info.Frames,
		Bytes:          size,
		SHA256:         digest,
		Orientation:    info.Orientation,
		BlobKey:        key,
		IdempotencyKey: idemKey,
	})
	if err != nil {
		s.deleteUnreferenced(ctx, key)
		return imgd.Image{}, false, err
	}
	if created {
		s.hub.Publish(events.ImageEvent(events.TypeImageUploaded, im))
	}
	return im, created, nil
}

// deleteUnreferenced deletes the blobs among keys that no image or result
// uses. It runs on after ctx ends, with a deadline of its own (a client
// that hung up must not leave a blob behind); failures only leak a blob,
// so they are logged.
func (s *Server) deleteUnreferenced(ctx context.Context, keys ...string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := imgd.DeleteUnreferenced(ctx, s.store, s.blobs, keys...); err != nil {
		logger(ctx).Warn("delete unreferenced blobs", "keys", keys, "error", err)
	}
}
