package imgd_test

import (
	"crypto/sha256"
	"testing"

	"github.com/imgd/imgd"
)

func TestBlobKey(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("imgd"))
	key := imgd.BlobKey(sum[:])
	digest, err := imgd.ParseBlobKey(key)
	if err != nil || "sha256/"+digest != key || len(digest) != 64 {
		t.Errorf("ParseBlobKey(BlobKey(sum)) = %q, %v; want the hex digest of %s", digest, err, key)
	}
	hex := key[len("sha256/"):]
	for _, bad := range []string{"", hex, "sha256/" + hex[:63], "sha256/" + hex + "a", "SHA256/" + hex,
		"sha256/" + hex[:62] + "AB", "sha256/" + hex[:61] + "/..", "sha256/../" + hex[3:]} {
		if _, err := imgd.ParseBlobKey(bad); imgd.CodeOf(err) != imgd.CodeInvalidArgument {
			t.Errorf("ParseBlobKey(%q) error = %v, want invalid_argument", bad, err)
		}
	}
}
