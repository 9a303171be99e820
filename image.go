package imgd

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

// Image is an uploaded original: its metadata as read from the header by the
// engine, and where its bytes are kept.
type Image struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`   // as given by the client; never used as a path
	MediaType   string `json:"media_type"` // sniffed from the bytes
	Format      Format `json:"format"`
	Width       int    `json:"width"`  // upright: after the EXIF orientation is applied
	Height      int    `json:"height"` // one frame's height
	Frames      int    `json:"frames"` // 1 for still images
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`      // lowercase hex of the original bytes
	Orientation int    `json:"orientation"` // EXIF orientation 1..8 (1 when the file has none); 0 when unknown
	Owner       string `json:"owner,omitempty"`
	BlobKey     string `json:"-"` // key in the BlobStore, "sha256/<hex>"
	// IdempotencyKey makes a retried upload return the first image instead of
	// a second one; unique per Owner, empty for none.
	IdempotencyKey string    `json:"-"`
	CreatedAt      time.Time `json:"created_at"`
}

// Lengths above which string fields are rejected.
const (
	MaxFilenameLen       = 1024
	MaxOwnerLen          = 256
	MaxIdempotencyKeyLen = 256
	MaxWebhookURLLen     = 2048
)

// Validate checks the fields a client or the engine filled; ID and CreatedAt
// are the store's. Errors are *Error with code invalid_argument.
func (im *Image) Validate() error {
	switch {
	case len(im.Filename) > MaxFilenameLen:
		return fieldErr("filename", "is longer than %d bytes", MaxFilenameLen)
	case im.MediaType == "":
		return fieldErr("media_type", "is required")
	case im.Format == "":
		return fieldErr("format", "is required")
	case im.Width <= 0 || im.Height <= 0:
		return fieldErr("width", "width and height must be > 0, got %dx%d", im.Width, im.Height)
	case im.Frames < 1:
		return fieldErr("frames", "must be >= 1, got %d", im.Frames)
	case im.Bytes < 0:
		return fieldErr("bytes", "must be >= 0, got %d", im.Bytes)
	case !isHexDigest(im.SHA256):
		return fieldErr("sha256", "must be 64 lowercase hex digits")
	case im.Orientation < 0 || im.Orientation > 8:
		return fieldErr("orientation", "must be 0..8, got %d", im.Orientation)
	case len(im.Owner) > MaxOwnerLen:
		return fieldErr("owner", "is longer than %d bytes", MaxOwnerLen)
	case len(im.IdempotencyKey) > MaxIdempotencyKeyLen:
		return fieldErr("idempotency_key", "is longer than %d bytes", MaxIdempotencyKeyLen)
	}
	if _, err := ParseBlobKey(im.BlobKey); err != nil {
		return fieldErr("blob_key", "%s", MessageOf(err))
	}
	return nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewID returns a new identifier for an image or a task: a UUID version 7
// (RFC 9562) in its 36-character text form. Its first 48 bits are the Unix
// time in milliseconds and the next 12 a counter, so IDs made by one process
// sort in creation order and B-tree indexes stay append-mostly; the last 62
// bits are random, so IDs are unguessable enough to be used in URLs.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("imgd: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	ms, seq := idClock.next(time.Now().UnixMilli(), b[6:8])
	binary.BigEndian.PutUint16(b[6:8], 0x7000|seq) // version 7 + 12-bit counter
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[8] = b[8]&0x3f | 0x80 // variant 10

	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// idClock keeps NewID monotonic within a process: in the same millisecond the
// counter increments; when it overflows, the millisecond is borrowed from the
// future (RFC 9562 §6.2, method 1).
var idClock idGenerator

type idGenerator struct {
	sync.Mutex
	ms  int64
	seq uint16
}

func (c *idGenerator) next(now int64, random []byte) (int64, uint16) {
	c.Lock()
	defer c.Unlock()
	if now > c.ms {
		c.ms = now
		c.seq = binary.BigEndian.Uint16(random) & 0x07ff // leave room to count up
		return c.ms, c.seq
	}
	c.seq++
	if c.seq > 0x0fff {
		c.ms++
		c.seq = 0
	}
	return c.ms, c.seq
}
