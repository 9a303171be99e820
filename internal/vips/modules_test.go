package vips

import (
	"os"
	"testing"

	"github.com/imgd/imgd/internal/imgtest"
)

// TestDeferredModules: libvips' dynamic modules load only when a format
// needs them, and the loader policy (every loader blocked but imgd's) holds
// for the classes they register. The test runs alone in this process, so it
// sees the modules before any other test loads them.
func TestDeferredModules(t *testing.T) {
	if err := Init(); err != nil {
		t.Fatal(err)
	}
	check := func(class string, wantRegistered, wantBlocked bool) {
		t.Helper()
		reg, blocked := loaderState(class)
		if reg != wantRegistered || (reg && blocked != wantBlocked) {
			t.Errorf("loader %s: registered %v, blocked %v; want %v, %v", class, reg, blocked, wantRegistered, wantBlocked)
		}
	}
	check("VipsForeignLoadJpegBuffer", true, false)
	check("VipsForeignLoadPngSource", true, false)
	check("VipsForeignLoadMatrixFile", true, true)
	check("VipsForeignLoadCsvSource", true, true)

	dir := moduleDirectory()
	if dir == "" {
		imgtest.Unavailable(t, "deferred module loading not covered: this libvips has no module directory (its formats are built in)")
	}
	if _, err := os.Stat(dir + "/vips-magick.so"); err != nil {
		imgtest.Unavailable(t, "deferred module loading not covered: no magick module (%v)", err)
	}
	check("VipsForeignLoadMagickBuffer", false, false)
	check("VipsForeignLoadHeifBuffer", false, false)

	bmp := imgtest.Read(t, "formats/bmp-24bit.bmp")
	im, err := Load(bmp, LoadOptions{Format: BMP})
	if err != nil {
		t.Fatalf("Load(BMP): %v", err)
	}
	im.Close()
	check("VipsForeignLoadMagickBuffer", true, false)
	check("VipsForeignLoadHeifBuffer", false, false)

	if err := needModule(HEIF); err != nil {
		t.Fatal(err)
	}
	check("VipsForeignLoadHeifBuffer", true, false)
	// poppler and openslide are never loaded.
	check("VipsForeignLoadPdfBuffer", false, false)
	ThreadDone()
}
