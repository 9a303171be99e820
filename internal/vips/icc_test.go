package vips

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/imgd/imgd/internal/imgtest"
)

// onThread runs f as the engine runs a job: on a locked OS thread whose
// libvips state is released at the end.
func onThread(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer ThreadDone()
	f()
}

// formatOf maps a testdata extension to its loader, for the formats
// these tests load.
func formatOf(rel string) (Format, bool) {
	switch strings.ToLower(filepath.Ext(rel)) {
	case ".jpg", ".jpeg":
		return JPEG, true
	case ".png":
		return PNG, true
	case ".webp":
		return WebP, true
	case ".gif":
		return GIF, true
	case ".tif", ".tiff":
		return TIFF, true
	}
	// Not HEIF/AVIF or BMP: their loaders are deferred modules, and
	// registering one while other tests run libvips operations trips
	// libvips' class-hash assertion (vips_class_build_hash_cb, seen here).
	// testdata's files in those formats carry no ICC profile (nclx only).
	return 0, false
}

// loader makes a fresh, not yet converted image each time it is called.
type loader func(t *testing.T) *Image

func jpegThumb(src []byte, w, h int) loader {
	return func(t *testing.T) *Image {
		t.Helper()
		im, ok, err := JPEGThumbnail(src, JPEGThumbnailOptions{Width: w, Height: h, Orientation: 1,
			Kernel: KernelLanczos3})
		if err != nil || !ok {
			t.Fatalf("JPEGThumbnail(%dx%d) = %v, %v", w, h, ok, err)
		}
		return im
	}
}

// jpegThumbWidth is jpegThumb at width w, keeping the aspect ratio.
func jpegThumbWidth(t *testing.T, src []byte, w int) loader {
	t.Helper()
	var iw, ih int
	onThread(func() {
		im := load(src, LoadOptions{Format: JPEG})(t)
		iw, ih = im.Width(), im.Height()
		im.Close()
	})
	return jpegThumb(src, w, max(1, ih*w/iw))
}

// load opens src sequentially, as the engine does.
func load(src []byte, o LoadOptions) loader {
	o.Sequential = true
	return func(t *testing.T) *Image {
		t.Helper()
		t.Cleanup(Pin(src)) // after the image is closed: convert closes it
		im, err := Load(src, o)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return im
	}
}

// convert runs mk's image through ToSRGB (c nil) or the lcms path with c
// and returns its pixels.
func convert(t *testing.T, mk loader, c *iccCache) (pix []byte, w, h, bands int) {
	t.Helper()
	onThread(func() {
		im := mk(t)
		defer im.Close()
		var err error
		if c == nil {
			err = im.ToSRGB()
		} else {
			err = im.toSRGBWith(c)
		}
		if err != nil {
			t.Fatalf("convert: %v", err)
		}
		if pix, err = im.Pixels(); err != nil {
			t.Fatalf("Pixels: %v", err)
		}
		w, h, bands = im.Width(), im.Height(), im.Bands()
	})
	return pix, w, h, bands
}

func profileOf(t *testing.T, mk loader) (profile []byte, format int) {
	t.Helper()
	onThread(func() {
		im := mk(t)
		defer im.Close()
		profile, format = im.profile()
	})
	return profile, format
}

// TestICCMatchesLibvips converts every testdata image (photos, formats,
// png, documents: the scan is grey with a grey profile, which imgd leaves
// unmanaged as before) both ways, as the engine's paths produce them: the JPEG thumbnail
// at 300 and 100 px wide and the DCT-shrunk CMYK load. RGB profiles give
// libvips' pixels exactly (same lcms transform, same output profile).
// CMYK ones differ by our coarser grid (300 px, shrunk load: mean
// 0.14-0.22 levels, max 2-6) or, unoptimised (100 px), by libvips' own
// grid error: mean 0.12, max 14 on jpeg-cmyk-icc (FOGRA39) in a few
// saturated pixels; max 2 on jpeg-cmyk (libvips' CMYK profile).
func TestICCMatchesLibvips(t *testing.T) {
	t.Parallel()
	var files []string
	for _, d := range []string{"photos", "formats", "png", "documents"} {
		files = append(files, imgtest.Files(t, d)...)
	}
	var mu sync.Mutex
	managed := map[int]int{}
	for _, rel := range files {
		f, ok := formatOf(rel)
		if !ok {
			continue
		}
		src := imgtest.Read(t, rel)
		cases := map[string]loader{"load": load(src, LoadOptions{Format: f})}
		if f == JPEG {
			cases = map[string]loader{"load-shrink2": load(src, LoadOptions{Format: f, Shrink: 2})}
			for _, tw := range []int{300, 100} {
				cases[fmt.Sprintf("thumb%d", tw)] = jpegThumbWidth(t, src, tw)
			}
		}
		for name, mk := range cases {
			t.Run(rel+"/"+name, func(t *testing.T) {
				t.Parallel()
				_, format := profileOf(t, mk)
				want, ww, wh, wb := convert(t, mk, nil)
				c := newICCCache(16, 16<<20)
				defer c.close()
				got, gw, gh, gb := convert(t, mk, c)
				if gw != ww || gh != wh || gb != wb {
					t.Fatalf("lcms path gave %dx%dx%d, libvips %dx%dx%d", gw, gh, gb, ww, wh, wb)
				}
				mean, mx := imgtest.MeanAbsDiff(got, want), imgtest.MaxAbsDiff(got, want)
				far := 0 // values more than 3 levels apart
				for i := range got {
					if d := int(got[i]) - int(want[i]); d > 3 || d < -3 {
						far++
					}
				}
				t.Logf("format %d: mean abs diff %.3f, max %d, %d of %d values off by more than 3",
					format, mean, mx, far, len(got))
				switch format {
				case 0:
					if mx != 0 {
						t.Errorf("unhandled image: pixels differ from ToSRGB's (max %d)", mx)
					}
				case iccRGB8:
					if mx != 0 {
						t.Errorf("RGB profile: mean abs diff %.3f, max %d; want identical pixels", mean, mx)
					}
				case iccCMYK8:
					if mean >= 0.5 || mx > 16 || far*1000 > len(got) {
						t.Errorf("CMYK: mean abs diff %.3f, max %d, %d of %d values off by more than 3; "+
							"want < 0.5, <= 16, at most 0.1%%", mean, mx, far, len(got))
					}
				}
				mu.Lock()
				managed[format]++
				mu.Unlock()
			})
		}
	}
	t.Cleanup(func() {
		// Adobe RGB and the swapped profile, FOGRA39 and libvips' CMYK
		// profile, each in three cases.
		if managed[iccRGB8] < 6 || managed[iccCMYK8] < 6 {
			t.Errorf("colour-managed cases: %d RGB, %d CMYK; want >= 6 each (testdata changed?)",
				managed[iccRGB8], managed[iccCMYK8])
		}
	})
}

// insertICC returns a JPEG with profile embedded as APP2 ICC_PROFILE
// segments right after SOI (replacing none: the input has no profile).
func insertICC(t *testing.T, jpeg, profile []byte) []byte {
	t.Helper()
	if len(jpeg) < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
		t.Fatal("insertICC: not a JPEG")
	}
	const chunk = 65519 // 65535 - 2 (length) - 14 ("ICC_PROFILE\0" + seq + count)
	n := (len(profile) + chunk - 1) / chunk
	var b bytes.Buffer
	b.Write(jpeg[:2])
	for i := range n {
		part := profile[i*chunk : min(len(profile), (i+1)*chunk)]
		b.Write([]byte{0xFF, 0xE2})
		_ = binary.Write(&b, binary.BigEndian, uint16(2+14+len(part)))
		b.WriteString("ICC_PROFILE\x00")
		b.Write([]byte{byte(i + 1), byte(n)})
		b.Write(part)
	}
	b.Write(jpeg[2:])
	return b.Bytes()
}

// TestICCSRGBSkipped: an image tagged with a colorimetrically sRGB profile
// (lcms' own, unlike any in testdata) keeps its pixels, exactly those of
// the untagged image, and libvips' transform of it is within a level of
// that, so skipping it is right.
func TestICCSRGBSkipped(t *testing.T) {
	t.Parallel()
	srgb := lcmsSRGBProfile()
	if len(srgb) == 0 {
		t.Fatal("lcms sRGB profile: empty")
	}
	plain := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	tagged := insertICC(t, plain, srgb)
	if p, format := profileOf(t, jpegThumb(tagged, 120, 80)); !bytes.Equal(p, srgb) || format != iccRGB8 {
		t.Fatalf("tagged JPEG: profile of %d bytes (format %d), want the %d-byte sRGB profile", len(p), format, len(srgb))
	}
	c := newICCCache(16, 16<<20)
	defer c.close()
	got, _, _, _ := convert(t, jpegThumb(tagged, 120, 80), c)
	want, _, _, _ := convert(t, jpegThumb(plain, 120, 80), nil)
	if !bytes.Equal(got, want) {
		t.Errorf("sRGB-tagged image: pixels differ from the untagged image's by up to %d levels",
			imgtest.MaxAbsDiff(got, want))
	}
	viaLibvips, _, _, _ := convert(t, jpegThumb(tagged, 120, 80), nil)
	if mx := imgtest.MaxAbsDiff(viaLibvips, want); mx > 1 {
		t.Errorf("libvips' transform of the sRGB-tagged image differs from the pixels by up to %d levels, want <= 1", mx)
	}
	if s := c.stats(); s.misses != 1 || s.entries != 1 {
		t.Errorf("cache after one sRGB image: %+v, want 1 miss, 1 entry", s)
	}
	// The verdict, and the transforms it stands for, come from the
	// profile's contents; libvips' own sRGB passes too (icc.c relies on it).
	for _, c := range []struct {
		name    string
		profile []byte
		format  int
		want    int
	}{
		{"lcms sRGB", srgb, iccRGB8, iccStatusSRGB},
		{"libvips sRGB", builtinProfile(iccRGB8), iccRGB8, iccStatusSRGB},
		{"Adobe RGB", mustProfile(t, "photos/jpeg-icc.jpg"), iccRGB8, iccStatusOK},
		{"swapped red and green", mustProfile(t, "photos/jpeg-icc-swapped-rg.jpg"), iccRGB8, iccStatusOK},
		{"FOGRA39", mustProfile(t, "photos/jpeg-cmyk-icc.jpg"), iccCMYK8, iccStatusOK},
	} {
		x, status := rawTransform(c.profile, c.format, uint32(flagsLUTRGB), true)
		freeTransform(x)
		if status != c.want {
			t.Errorf("%s: status %d, want %d", c.name, status, c.want)
		}
	}
	if !lcmsOutput() {
		t.Error("libvips' sRGB profile failed the sRGB test: CMYK transforms pay for inverting its curves")
	}
}

func mustProfile(t *testing.T, rel string) []byte {
	t.Helper()
	p, _ := profileOf(t, load(imgtest.Read(t, rel), LoadOptions{Format: JPEG, Shrink: 8}))
	if len(p) == 0 {
		t.Fatalf("%s: no profile", rel)
	}
	return p
}

// TestICCBrokenProfile: profiles lcms cannot use for the image (garbage, a
// truncated profile, a CMYK profile on RGB pixels) leave the conversion to
// libvips, which ignores them, as before.
func TestICCBrokenProfile(t *testing.T) {
	t.Parallel()
	plain := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	adobe := mustProfile(t, "photos/jpeg-icc.jpg")
	for _, c := range []struct {
		name    string
		profile []byte
	}{
		{"garbage", bytes.Repeat([]byte("not a profile "), 40)},
		{"truncated", adobe[:len(adobe)/2]},
		{"CMYK on RGB", mustProfile(t, "photos/jpeg-cmyk-icc.jpg")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mk := jpegThumb(insertICC(t, plain, c.profile), 120, 80)
			cache := newICCCache(16, 16<<20)
			defer cache.close()
			got, _, _, _ := convert(t, mk, cache)
			want, _, _, _ := convert(t, mk, nil)
			if !bytes.Equal(got, want) {
				t.Errorf("pixels differ from ToSRGB's by up to %d levels", imgtest.MaxAbsDiff(got, want))
			}
			if s := cache.stats(); s.misses != 1 {
				t.Errorf("cache: %+v, want the verdict cached after 1 miss", s)
			}
			// The verdict is cached: the second image does not parse again.
			convert(t, mk, cache)
			if s := cache.stats(); s.misses != 1 || s.hits != 1 {
				t.Errorf("cache after a second image: %+v, want 1 miss, 1 hit", s)
			}
		})
	}
}

// TestICCCacheHit: the second image with the same profile reuses the
// transform and gets the same pixels; small CMYK images go unoptimised
// until the pixels converted with the profile pass the crossover, then
// the grid is built once.
func TestICCCacheHit(t *testing.T) {
	t.Parallel()
	src := imgtest.Read(t, "photos/jpeg-icc.jpg")
	c := newICCCache(16, 16<<20)
	defer c.close()
	first, _, _, _ := convert(t, jpegThumb(src, 300, 200), c)
	second, _, _, _ := convert(t, jpegThumb(src, 300, 200), c)
	if !bytes.Equal(first, second) {
		t.Error("second conversion differs from the first")
	}
	if s := c.stats(); s.misses != 1 || s.hits != 1 || s.entries != 1 {
		t.Errorf("after two images with one profile: %+v, want 1 miss, 1 hit, 1 entry", s)
	}

	cmyk := imgtest.Read(t, "photos/jpeg-cmyk-icc.jpg")
	small := jpegThumb(cmyk, 100, 63) // 6,300 pixels: under directMaxCMYK
	c2 := newICCCache(16, 16<<20)
	defer c2.close()
	n := 0
	for px := int64(0); px+6300 <= directMaxCMYK; px += 6300 {
		convert(t, small, c2)
		n++
	}
	if s := c2.stats(); s.entries != 1 || s.misses != 1 {
		t.Errorf("after %d small CMYK images: %+v, want 1 entry (unoptimised), 1 miss", n, s)
	}
	convert(t, small, c2)
	if s := c2.stats(); s.entries != 2 || s.misses != 2 {
		t.Errorf("past the crossover: %+v, want the grid built (2 entries, 2 misses)", s)
	}
	convert(t, small, c2)
	if s := c2.stats(); s.misses != 2 {
		t.Errorf("after the grid was built: %+v, want no new miss", s)
	}
}

// TestICCCacheEviction: the cache holds at most maxEntries transforms and
// maxBytes; an entry evicted while in use stays valid until released.
func TestICCCacheEviction(t *testing.T) {
	t.Parallel()
	profiles := [][]byte{mustProfile(t, "photos/jpeg-icc.jpg"), mustProfile(t, "photos/jpeg-icc-swapped-rg.jpg"),
		builtinProfile(iccRGB8)}
	c := newICCCache(2, 16<<20)
	defer c.close()
	held := c.acquire(profiles[0], iccRGB8, 60_000)
	for _, p := range profiles[1:] {
		c.release(c.acquire(p, iccRGB8, 60_000))
	}
	if s := c.stats(); s.entries != 2 || s.evictions != 1 || s.misses != 3 {
		t.Errorf("3 profiles through a 2-entry cache: %+v, want 2 entries, 1 eviction, 3 misses", s)
	}
	if !held.evicted || held.xform == nil {
		t.Fatalf("held entry: evicted %v, transform %v; want evicted and still usable", held.evicted, held.xform)
	}
	in, out := bytes.Repeat([]byte{200, 100, 50}, 64), make([]byte, 3*64)
	doTransform(held.xform, in, out, 64)
	c.release(held)
	if held.xform != nil {
		t.Error("evicted entry not freed on its last release")
	}
	c.release(c.acquire(profiles[0], iccRGB8, 60_000))
	if s := c.stats(); s.misses != 4 {
		t.Errorf("evicted profile used again: %+v, want a 4th miss", s)
	}

	// The byte bound: a device link (estimated 215 KB for RGB) in a
	// 300 KB cache leaves room for one.
	b := newICCCache(16, 300<<10)
	defer b.close()
	for _, p := range profiles[:2] {
		b.release(b.acquire(p, iccRGB8, 60_000))
	}
	if s := b.stats(); s.entries != 1 || s.bytes > 300<<10 || s.evictions != 1 {
		t.Errorf("two device links in 300 KB: %+v, want 1 entry within the bound, 1 eviction", s)
	}
}

// TestICCConcurrent converts from many goroutines through a cache too
// small for the profiles in play, so that entries are evicted while
// others use them; every result must be the one a lone conversion gives
// (300 px thumbnails: over the crossovers, so the same kind of transform).
func TestICCConcurrent(t *testing.T) {
	t.Parallel()
	type input struct {
		name string
		mk   loader
		want []byte
	}
	var inputs []input
	for _, rel := range []string{"photos/jpeg-icc.jpg", "photos/jpeg-icc-swapped-rg.jpg", "photos/jpeg-cmyk-icc.jpg",
		"photos/jpeg-cmyk.jpg"} {
		mk := jpegThumbWidth(t, imgtest.Read(t, rel), 300)
		lone := newICCCache(16, 16<<20)
		want, _, _, _ := convert(t, mk, lone)
		lone.close()
		inputs = append(inputs, input{rel, mk, want})
	}
	c := newICCCache(2, 16<<20)
	defer c.close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 6 {
				in := inputs[(g+i)%len(inputs)]
				got, _, _, _ := convert(t, in.mk, c)
				if !bytes.Equal(got, in.want) {
					t.Errorf("goroutine %d, %s: pixels differ by up to %d levels", g, in.name, imgtest.MaxAbsDiff(got, in.want))
				}
			}
		})
	}
	wg.Wait()
	if s := c.stats(); s.entries > 2 || s.evictions == 0 {
		t.Errorf("cache after the run: %+v, want <= 2 entries and some evictions", s)
	}
}
