package imgd_test

import (
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/imgd/imgd"
)

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDFormat(t *testing.T) {
	t.Parallel()
	before := time.Now().UnixMilli()
	id := imgd.NewID()
	after := time.Now().UnixMilli()
	if !uuidV7.MatchString(id) {
		t.Fatalf("NewID() = %q, want a lowercase UUID version 7", id)
	}
	var ms int64
	for _, c := range id[:8] + id[9:13] {
		ms = ms<<4 | int64(hexVal(c))
	}
	// The clock may have been borrowed from the future by earlier calls in
	// this process, by at most one millisecond per 4096 IDs.
	if ms < before || ms > after+100 {
		t.Errorf("NewID() = %q carries time %d, want within [%d, %d]", id, ms, before, after)
	}
}

func hexVal(c rune) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c-'a') + 10
}

// IDs made in one process sort in creation order, also within one
// millisecond and across goroutines (each goroutine's IDs stay ordered).
func TestNewIDMonotonicAndUnique(t *testing.T) {
	t.Parallel()
	const goroutines, perG = 4, 5000
	ids := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range perG {
				ids[g] = append(ids[g], imgd.NewID())
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, goroutines*perG)
	for g, list := range ids {
		if !slices.IsSorted(list) {
			t.Errorf("goroutine %d: IDs not in creation order", g)
		}
		for _, id := range list {
			if seen[id] {
				t.Fatalf("NewID() returned %s twice", id)
			}
			seen[id] = true
			if !uuidV7.MatchString(id) {
				t.Fatalf("NewID() = %q, want a UUIDv7", id)
			}
		}
	}
}

func TestImageValidate(t *testing.T) {
	t.Parallel()
	valid := imgd.Image{MediaType: "image/jpeg", Format: imgd.FormatJPEG, Width: 1, Height: 1, Frames: 1,
		SHA256:  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		BlobKey: "sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
	if err := valid.Validate(); err != nil {
		t.Errorf("Validate(valid image) = %v", err)
	}
	tests := []struct {
		name   string
		modify func(*imgd.Image)
		field  string
	}{
		{"no format", func(im *imgd.Image) { im.Format = "" }, "format"},
		{"zero height", func(im *imgd.Image) { im.Height = 0 }, "width"},
		{"bad sha256", func(im *imgd.Image) { im.SHA256 = "xyz" }, "sha256"},
		{"bad blob key", func(im *imgd.Image) { im.BlobKey = "originals/photo.jpg" }, "blob_key"},
		{"orientation -1", func(im *imgd.Image) { im.Orientation = -1 }, "orientation"},
	}
	for _, tt := range tests {
		im := valid
		tt.modify(&im)
		err := im.Validate()
		e, ok := err.(*imgd.Error)
		if !ok || e.Code != imgd.CodeInvalidArgument || e.Field != tt.field {
			t.Errorf("Validate(%s) = %#v, want invalid_argument on field %q", tt.name, err, tt.field)
		}
	}
}
