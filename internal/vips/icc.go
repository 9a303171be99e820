package vips

/*
#cgo pkg-config: lcms2
#cgo LDFLAGS: -lm
#include "vips.h"
#include <lcms2.h>
*/
import "C"

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"unsafe"
)

// How a transform is built. lcms' default optimisation turns the profiles'
// pipeline into a device link before the first pixel: for RGB
// matrix/TRC profiles a curves-and-matrix shortcut, otherwise a grid of
// samples (for CMYK 17^4 nodes, each a full pipeline evaluation).
// Unoptimised (cmsFLAGS_NOOPTIMIZE) it evaluates that pipeline on every
// pixel instead.
//
// Measured (thread CPU time, medians of 15, on a 300 px thumbnail of each
// testdata profile; output: libvips' sRGB for RGB, lcms' for CMYK, see
// icc.c):
//
//	                       build     per pixel   56-60K px
//	RGB default            3.6 ms     8.5 ns      4.1 ms
//	RGB unoptimised        2.9 ms     90-100 ns   8.3 ms
//	CMYK default (17^4)    26 ms      44 ns       29 ms
//	CMYK grid 13^4         9.7 ms     45 ns       12 ms
//	CMYK grid 11^4         4.9 ms     41 ns       7.2 ms
//	CMYK grid 9^4          2.6 ms     41 ns       4.9 ms
//	CMYK unoptimised       0.7 ms     275 ns      16 ms
//
// Against the unoptimised (exact) result, on those thumbnails: the 17^4
// grid libvips uses is off by 0.12-0.14 levels on average and 2-5 at most,
// 13^4 by 0.22 (max 3-6), 11^4 by 0.29 (max 3-7), 9^4 by 0.34-0.50 (max
// 7-14). CMYK takes the 11^4 grid: 5x cheaper to build than libvips'
// grid, for a max error within two levels of it, and goes unoptimised
// under 18,000 pixels ((4.9-0.7) ms / (275-41) ns). RGB always keeps
// lcms' default: unoptimised would save at most 0.7 ms, under 8,000
// pixels, and lose bit-exactness with libvips (icc.c).
const (
	flagsDirect   C.uint = C.cmsFLAGS_NOOPTIMIZE
	flagsLUTRGB   C.uint = 0
	flagsLUTCMYK  C.uint = 11 << 16 // cmsFLAGS_GRIDPOINTS(11)
	directMaxRGB         = 0
	directMaxCMYK        = 18_000
)

// ToSRGBCached converts to 8-bit sRGB as ToSRGB does, for images whose
// pixels are few and about to be computed anyway (a thumbnail, a shrunk
// CMYK decode): it computes the image into memory and converts it with a
// little-cms transform kept in a process-wide cache, keyed by the
// profile's SHA-256, so that the next image with the same profile does not
// pay for building it. A profile that is colorimetrically sRGB is not
// applied at all. Images it does not handle (grey, 16-bit, alpha, LAB, no
// profile, a profile lcms rejects) go through ToSRGB. RGB results are
// ToSRGB's bit for bit; CMYK ones differ by 0.1-0.3 levels on average
// (TestICCMatchesLibvips has the numbers).
func (im *Image) ToSRGBCached() error {
	return im.toSRGBWith(defaultICCCache)
}

func (im *Image) toSRGBWith(c *iccCache) error {
	var data unsafe.Pointer
	var n C.size_t
	format := C.imgd_icc_inspect(im.p, &data, &n)
	if format == 0 {
		return im.ToSRGB()
	}
	// data belongs to im, which stays alive during this call.
	profile := unsafe.Slice((*byte)(data), int(n))
	e := c.acquire(profile, int(format), int64(im.Width())*int64(im.Height()))
	defer c.release(e)
	switch e.status {
	case C.IMGD_ICC_OK:
		return im.apply("icc", func(out **C.VipsImage) C.int { return C.imgd_icc_apply(im.p, e.xform, out) })
	case C.IMGD_ICC_SRGB:
		return im.apply("colourspace", func(out **C.VipsImage) C.int { return C.imgd_drop_profile(im.p, out) })
	}
	// lcms cannot use the profile: libvips ignores it, as it always did.
	return im.ToSRGB()
}

// iccKey identifies one transform: the profile, the pixel format it reads
// and the lcms flags it was built with.
type iccKey struct {
	sum    [sha256.Size]byte
	format int
	flags  C.uint
}

// iccEntry is a cached transform, or the verdict that none is needed
// (status IMGD_ICC_SRGB) or possible (IMGD_ICC_BROKEN).
type iccEntry struct {
	key    iccKey
	status C.int
	xform  unsafe.Pointer
	size   int64 // bytes held, estimated
	// pixels converted through a flagsDirect transform so far: once past
	// the crossover, the device link is built.
	pixels  int64
	refs    int  // callers between acquire and release
	evicted bool // out of the cache: freed when refs drops to 0
	elem    *list.Element
}

// iccCache is a small LRU of transforms, bounded in entries and in
// (estimated) bytes. lcms transforms may run concurrently (cmsDoTransform
// only reads the transform; its 1-pixel cache is a copy on the stack), so
// an entry is only reference counted, not locked, while in use.
type iccCache struct {
	maxEntries int
	maxBytes   int64

	mu        sync.Mutex
	m         map[iccKey]*iccEntry
	lru       list.List // front: most recently used
	bytes     int64
	hits      int64
	misses    int64
	evictions int64
}

// The process-wide cache: 16 transforms cover the profiles a server sees
// in a burst (camera makers', Adobe RGB, press profiles); the byte bound
// keeps unoptimised transforms of large profiles (a few MB each, their
// tables) from holding more than 16 MB.
var defaultICCCache = newICCCache(16, 16<<20)

func newICCCache(maxEntries int, maxBytes int64) *iccCache {
	return &iccCache{maxEntries: maxEntries, maxBytes: maxBytes, m: map[iccKey]*iccEntry{}}
}

// acquire returns the entry to convert pixels pixels of format with
// profile, building it if need be. The caller releases it.
func (c *iccCache) acquire(profile []byte, format int, pixels int64) *iccEntry {
	sum := sha256.Sum256(profile)
	lut := iccKey{sum: sum, format: format, flags: flagsLUTRGB}
	limit := int64(directMaxRGB)
	if format == C.IMGD_ICC_CMYK8 {
		lut.flags, limit = flagsLUTCMYK, directMaxCMYK
	}
	direct := iccKey{sum: sum, format: format, flags: flagsDirect}

	key := lut
	c.mu.Lock()
	if e := c.use(lut); e != nil {
		c.mu.Unlock()
		return e
	}
	if e := c.use(direct); e != nil {
		if e.status != C.IMGD_ICC_OK || e.pixels+pixels <= limit {
			e.pixels += pixels
			c.mu.Unlock()
			return e
		}
		// This profile keeps coming: the device link pays now (the
		// unoptimised transform ages out of the LRU).
		c.release1(e)
	} else if pixels <= limit {
		key = direct
	}
	c.misses++
	c.mu.Unlock()

	e := c.build(profile, key)
	e.pixels = pixels
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		// Built meanwhile by another caller: use theirs.
		old.refs++
		c.lru.MoveToFront(old.elem)
		freeEntry(e)
		return old
	}
	e.refs = 1
	c.m[key] = e
	e.elem = c.lru.PushFront(e)
	c.bytes += e.size
	c.evict()
	return e
}

// use returns the cached entry for k, counted as in use, or nil.
func (c *iccCache) use(k iccKey) *iccEntry {
	e, ok := c.m[k]
	if !ok {
		return nil
	}
	c.hits++
	e.refs++
	c.lru.MoveToFront(e.elem)
	return e
}

func (c *iccCache) build(profile []byte, k iccKey) *iccEntry {
	var status C.int
	x := C.imgd_icc_new(unsafe.Pointer(unsafe.SliceData(profile)), C.size_t(len(profile)), C.int(k.format),
		k.flags, 1, &status)
	e := &iccEntry{key: k, status: status, xform: x, size: 256}
	if x != nil {
		e.size = transformSize(len(profile), k)
	}
	return e
}

// transformSize estimates what a transform holds: the device link's grid
// of 16-bit samples (11 points a side for CMYK, lcms' default of 33 for
// RGB, an upper bound for the matrix shortcut), or, unoptimised, the
// profile's own tables, about its size.
func transformSize(profileLen int, k iccKey) int64 {
	if k.flags&flagsDirect != 0 {
		return int64(profileLen) + 4096
	}
	if k.format == C.IMGD_ICC_CMYK8 {
		return 11 * 11 * 11 * 11 * 3 * 2
	}
	return 33 * 33 * 33 * 3 * 2
}

func (c *iccCache) release(e *iccEntry) {
	c.mu.Lock()
	c.release1(e)
	c.mu.Unlock()
}

func (c *iccCache) release1(e *iccEntry) {
	e.refs--
	if e.refs == 0 && e.evicted {
		freeEntry(e)
	}
}

// evict drops least recently used entries while over a bound; one in use
// is freed by its last release.
func (c *iccCache) evict() {
	for c.lru.Len() > 0 && (c.lru.Len() > c.maxEntries || c.bytes > c.maxBytes) {
		e := c.lru.Remove(c.lru.Back()).(*iccEntry)
		delete(c.m, e.key)
		c.bytes -= e.size
		c.evictions++
		e.evicted = true
		if e.refs == 0 {
			freeEntry(e)
		}
	}
}

func freeEntry(e *iccEntry) {
	C.imgd_icc_free(e.xform)
	e.xform = nil
}

// iccStats is what tests read from a cache.
type iccStats struct {
	entries                 int
	bytes                   int64
	hits, misses, evictions int64
}

func (c *iccCache) stats() iccStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return iccStats{entries: c.lru.Len(), bytes: c.bytes, hits: c.hits, misses: c.misses, evictions: c.evictions}
}

// close frees every entry (tests; entries in use are freed on release).
func (c *iccCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxEntries = 0
	c.evict()
}

// lcmsSRGBProfile is lcms' own sRGB profile, serialised (tests tag images
// with it).
func lcmsSRGBProfile() []byte {
	var n C.size_t
	p := C.imgd_icc_lcms_srgb(&n)
	if p == nil {
		return nil
	}
	defer C.g_free(C.gpointer(p))
	return C.GoBytes(p, C.int(n))
}

// builtinProfile is libvips' built-in sRGB or CMYK profile.
func builtinProfile(format int) []byte {
	var n C.size_t
	p := C.imgd_icc_builtin(C.int(format), &n)
	if p == nil {
		return nil
	}
	return C.GoBytes(p, C.int(n))
}

// rawTransform builds a transform outside any cache (measurements, tests).
// checkSRGB asks for the sRGB verdict; status is IMGD_ICC_*.
func rawTransform(profile []byte, format int, flags uint32, checkSRGB bool) (x unsafe.Pointer, status int) {
	var st C.int
	x = C.imgd_icc_new(unsafe.Pointer(unsafe.SliceData(profile)), C.size_t(len(profile)), C.int(format),
		C.uint(flags), cbool(checkSRGB), &st)
	return x, int(st)
}

// doTransform converts n pixels from in to out (3 bytes a pixel).
func doTransform(x unsafe.Pointer, in, out []byte, n int) {
	C.imgd_icc_do(x, unsafe.Pointer(unsafe.SliceData(in)), unsafe.Pointer(unsafe.SliceData(out)), C.size_t(n))
}

func freeTransform(x unsafe.Pointer) { C.imgd_icc_free(x) }

// profile is the colour profile imgd_icc_inspect would use for im (its
// own, or libvips' CMYK profile), and the pixel format, or 0.
func (im *Image) profile() ([]byte, int) {
	var data unsafe.Pointer
	var n C.size_t
	format := C.imgd_icc_inspect(im.p, &data, &n)
	if format == 0 {
		return nil, 0
	}
	return C.GoBytes(data, C.int(n)), int(format)
}

// lcmsOutput reports whether transforms write through lcms' own sRGB
// profile (libvips' passed the sRGB test).
func lcmsOutput() bool { return C.imgd_icc_lcms_output() != 0 }

// Pixel formats and verdicts of icc.c, for Go code and tests.
const (
	iccRGB8         = int(C.IMGD_ICC_RGB8)
	iccCMYK8        = int(C.IMGD_ICC_CMYK8)
	iccStatusOK     = int(C.IMGD_ICC_OK)
	iccStatusSRGB   = int(C.IMGD_ICC_SRGB)
	iccStatusBroken = int(C.IMGD_ICC_BROKEN)
)
