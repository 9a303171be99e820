// Colour-profile conversion of small in-memory images straight on
// little-cms, with transforms that icc.go caches between images.
//
// Why it exists: vips_icc_transform builds a new lcms transform for every
// image, and lcms' default optimisation precomputes a device link (for a
// CMYK profile a 4-D grid of 23^4 nodes, each a full pipeline
// evaluation). A 300 px thumbnail has 50-200 thousand pixels: building
// that grid costs more than evaluating the pipeline on each pixel. Here
// the caller chooses the flags (icc.go has the measured crossover) and
// keeps the transform for the next image with the same profile.
//
// The transform is the one imgd_to_srgb asks libvips for: embedded profile
// (libvips' built-in CMYK profile for CMYK without one) to libvips'
// built-in sRGB profile, relative colorimetric, no black-point
// compensation (vips_icc_transform's default, which imgd keeps), 8 bits in
// and out. Pixels arrive as libvips decoded them: Adobe-inverted CMYK is
// already inverted back by the loader (jpeg.c does the same), so they are
// plain TYPE_CMYK_8.

// lcms2.h before vips.h, as libvips' own icc_transform.c does.
#include <lcms2.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "vips.h"

static pthread_once_t icc_once = PTHREAD_ONCE_INIT, cmyk_once = PTHREAD_ONCE_INIT;
static cmsContext icc_ctx;
static VipsBlob *srgb_blob, *cmyk_blob;
static int out_lcms_srgb;

static int is_srgb(cmsHPROFILE p);

// lcms reports broken profiles through the error handler; this path falls
// back to libvips for them, which reports on its own, so ours is silent.
// Its own context also keeps this handler off libvips' (global) one.
static void icc_silent(cmsContext c, cmsUInt32Number code, const char *text) {}

static void icc_init(void) {
	icc_ctx = cmsCreateContext(NULL, NULL);
	if (!icc_ctx)
		return;
	cmsSetLogErrorHandlerTHR(icc_ctx, icc_silent);
	// Built into libvips; the reference lives as long as the process.
	if (vips_profile_load("srgb", &srgb_blob, NULL)) {
		srgb_blob = NULL;
		vips_error_clear();
		return;
	}
	// libvips' sRGB profile stores its curves as 1024-point tables, which
	// lcms inverts (cmsReverseToneCurveEx) for every transform it builds:
	// 2-3 ms each. lcms' own sRGB has the parametric curve, inverted in
	// closed form. When libvips' profile passes the same colorimetric test
	// as embedded ones (it does in 8.14), the two agree to within a level
	// (0.035 on average on jpeg-icc.jpg). CMYK transforms, which differ
	// from libvips' anyway (icc.go: a coarser grid), write through lcms'
	// sRGB; RGB ones through libvips', so that they give libvips' pixels
	// bit for bit (error diffusion turns a one-level change anywhere into
	// a different dither pattern: TestGolden's dither-atkinson-pico8 fell
	// from identical to 19 dB PSNR).
	size_t n;
	const void *d = vips_blob_get(srgb_blob, &n);
	cmsHPROFILE p = cmsOpenProfileFromMemTHR(icc_ctx, d, (cmsUInt32Number) n);
	if (p) {
		out_lcms_srgb = is_srgb(p);
		cmsCloseProfile(p);
	}
}

// libvips' CMYK profile is only loaded for a CMYK image without one: it
// is stored compressed (1 MB, about 4 ms to unpack, which every process
// paid when it was loaded up front).
static void cmyk_init(void) {
	if (vips_profile_load("cmyk", &cmyk_blob, NULL)) {
		cmyk_blob = NULL;
		vips_error_clear();
	}
}

static int icc_ready(void) {
	pthread_once(&icc_once, icc_init);
	return icc_ctx && srgb_blob;
}

static VipsBlob *cmyk_fallback(void) {
	pthread_once(&cmyk_once, cmyk_init);
	return cmyk_blob;
}

const void *imgd_icc_builtin(int which, size_t *len) {
	*len = 0;
	if (!icc_ready())
		return NULL;
	VipsBlob *b = which == IMGD_ICC_CMYK8 ? cmyk_fallback() : srgb_blob;
	return b ? vips_blob_get(b, len) : NULL;
}

// imgd_icc_inspect says whether imgd_icc_apply can convert in: an
// uncoded 8-bit sRGB image with an embedded profile (3 bands, no alpha),
// or an 8-bit CMYK image (4 bands). *data is its profile, libvips' CMYK
// profile for CMYK without one, valid while in is. Anything else (grey,
// which imgd_to_srgb does not colour-manage, 16-bit, LAB, alpha, no
// profile) returns 0: use imgd_to_srgb.
int imgd_icc_inspect(VipsImage *in, const void **data, size_t *len) {
	*data = NULL;
	*len = 0;
	if (in->Coding != VIPS_CODING_NONE || in->BandFmt != VIPS_FORMAT_UCHAR)
		return 0;
	VipsInterpretation interp = vips_image_guess_interpretation(in);
	gboolean profile = vips_image_get_typeof(in, VIPS_META_ICC_NAME) != 0;
	int format;
	if (interp == VIPS_INTERPRETATION_sRGB && in->Bands == 3 && profile)
		format = IMGD_ICC_RGB8;
	else if (interp == VIPS_INTERPRETATION_CMYK && in->Bands == 4)
		format = IMGD_ICC_CMYK8;
	else
		return 0;
	if (!icc_ready())
		return 0;
	if (profile) {
		if (vips_image_get_blob(in, VIPS_META_ICC_NAME, data, len)) {
			vips_error_clear();
			return 0;
		}
	} else if (cmyk_fallback())
		*data = vips_blob_get(cmyk_blob, len);
	if (!*data || *len == 0)
		return 0;
	return format;
}

// ---- colorimetric sRGB ----

static int xyz_close(const cmsCIEXYZ *a, const cmsCIEXYZ *b, double tol) {
	return a && b && fabs(a->X - b->X) <= tol && fabs(a->Y - b->Y) <= tol && fabs(a->Z - b->Z) <= tol;
}

static double srgb_encode(double y) {
	if (y <= 0.0031308)
		return 12.92 * y;
	return 1.055 * pow(y, 1 / 2.4) - 0.055;
}

// is_srgb reports whether an RGB profile converts to sRGB as the identity,
// to within the 8-bit rounding: a matrix/TRC profile (no A2B/D2B table,
// which lcms would prefer for the relative intent) whose colorants are
// those of lcms' own sRGB (D50-adapted primaries, within 0.002: vendors'
// sRGB profiles agree to about 0.0005, and 0.002 moves a saturated colour
// by under one level), whose media white is D50 (v4 convention) or D65 (v2
// sRGB profiles; the relative intent does not use it), and whose three
// curves, re-encoded with the sRGB curve, give back every 8-bit level to
// within 0.5 (a gamma 2.2 curve misses by up to 8 levels in the shadows).
static int is_srgb(cmsHPROFILE p) {
	if (cmsGetColorSpace(p) != cmsSigRgbData || cmsGetPCS(p) != cmsSigXYZData || !cmsIsMatrixShaper(p) ||
			cmsIsCLUT(p, INTENT_RELATIVE_COLORIMETRIC, LCMS_USED_AS_INPUT) ||
			cmsIsTag(p, cmsSigDToB0Tag) || cmsIsTag(p, cmsSigDToB1Tag))
		return 0;
	cmsHPROFILE ref = cmsCreate_sRGBProfileTHR(icc_ctx);
	if (!ref)
		return 0;
	int ok = 1;
	const cmsTagSignature colorants[] = {cmsSigRedColorantTag, cmsSigGreenColorantTag, cmsSigBlueColorantTag};
	for (int i = 0; i < 3 && ok; i++)
		ok = xyz_close(cmsReadTag(p, colorants[i]), cmsReadTag(ref, colorants[i]), 0.002);
	cmsCloseProfile(ref);
	if (!ok)
		return 0;
	const cmsCIEXYZ *wt = cmsReadTag(p, cmsSigMediaWhitePointTag);
	cmsCIEXYZ d65;
	cmsCIExyY d65xyY;
	cmsWhitePointFromTemp(&d65xyY, 6504);
	cmsxyY2XYZ(&d65, &d65xyY);
	if (wt && !xyz_close(wt, cmsD50_XYZ(), 0.003) && !xyz_close(wt, &d65, 0.003))
		return 0;
	const cmsTagSignature trcs[] = {cmsSigRedTRCTag, cmsSigGreenTRCTag, cmsSigBlueTRCTag};
	for (int i = 0; i < 3; i++) {
		cmsToneCurve *c = cmsReadTag(p, trcs[i]);
		if (!c)
			return 0;
		for (int v = 0; v < 256; v++) {
			double y = cmsEvalToneCurveFloat(c, (cmsFloat32Number) (v / 255.0));
			if (fabs(srgb_encode(y) * 255 - v) > 0.5)
				return 0;
		}
	}
	return 1;
}

// imgd_icc_new builds the transform of 8-bit pixels in format (IMGD_ICC_*)
// from the profile to libvips' sRGB, with lcms flags (cmsFLAGS_NOOPTIMIZE,
// cmsFLAGS_GRIDPOINTS). It returns NULL with *status set when there is
// none to build: IMGD_ICC_SRGB when check_srgb is set and the profile is
// colorimetrically sRGB (the pixels stay as they are), IMGD_ICC_BROKEN
// when lcms cannot use the profile for this image (imgd_to_srgb then
// decides, as before).
void *imgd_icc_new(const void *data, size_t len, int format, unsigned flags, int check_srgb, int *status) {
	*status = IMGD_ICC_BROKEN;
	if (!icc_ready() || len > 0xFFFFFFFFu)
		return NULL;
	cmsHPROFILE in = cmsOpenProfileFromMemTHR(icc_ctx, data, (cmsUInt32Number) len);
	if (!in)
		return NULL;
	cmsColorSpaceSignature want = format == IMGD_ICC_CMYK8 ? cmsSigCmykData : cmsSigRgbData;
	cmsProfileClassSignature cls = cmsGetDeviceClass(in);
	if (cmsGetColorSpace(in) != want || cls == cmsSigLinkClass || cls == cmsSigAbstractClass ||
			cls == cmsSigNamedColorClass) {
		cmsCloseProfile(in);
		return NULL;
	}
	if (check_srgb && format == IMGD_ICC_RGB8 && is_srgb(in)) {
		cmsCloseProfile(in);
		*status = IMGD_ICC_SRGB;
		return NULL;
	}
	// Made per transform: lcms reads tags lazily, so one handle is not
	// shared between threads.
	cmsHPROFILE out;
	if (out_lcms_srgb && format == IMGD_ICC_CMYK8)
		out = cmsCreate_sRGBProfileTHR(icc_ctx);
	else {
		size_t slen;
		const void *sdata = vips_blob_get(srgb_blob, &slen);
		out = cmsOpenProfileFromMemTHR(icc_ctx, sdata, (cmsUInt32Number) slen);
	}
	if (!out) {
		cmsCloseProfile(in);
		return NULL;
	}
	// The 1-pixel cache stays on: cmsDoTransform copies it to the stack,
	// so concurrent calls do not share it, and flat areas cost nothing.
	cmsHTRANSFORM t = cmsCreateTransformTHR(icc_ctx, in, format == IMGD_ICC_CMYK8 ? TYPE_CMYK_8 : TYPE_RGB_8,
		out, TYPE_RGB_8, INTENT_RELATIVE_COLORIMETRIC, flags);
	cmsCloseProfile(in);
	cmsCloseProfile(out);
	if (t)
		*status = IMGD_ICC_OK;
	return t;
}

void imgd_icc_free(void *t) {
	if (t)
		cmsDeleteTransform(t);
}

// imgd_icc_do converts n pixels (for measurements and tests).
void imgd_icc_do(void *t, const void *in, void *out, size_t n) {
	cmsDoTransform(t, in, out, (cmsUInt32Number) n);
}

// imgd_icc_apply computes in into memory and converts it with t to an
// 8-bit sRGB image that keeps in's metadata but not its profile, as
// imgd_to_srgb's result does.
int imgd_icc_apply(VipsImage *in, void *t, VipsImage **out) {
	VipsImage *mem = vips_image_copy_memory(in);
	if (!mem)
		return -1;
	VipsImage *o = vips_image_new_memory();
	if (vips_image_pipelinev(o, VIPS_DEMAND_STYLE_THINSTRIP, mem, NULL)) {
		g_object_unref(mem);
		g_object_unref(o);
		return -1;
	}
	o->Bands = 3;
	o->BandFmt = VIPS_FORMAT_UCHAR;
	o->Type = VIPS_INTERPRETATION_sRGB;
	vips_image_remove(o, VIPS_META_ICC_NAME);
	if (vips_image_write_prepare(o)) {
		g_object_unref(mem);
		g_object_unref(o);
		return -1;
	}
	// Both are contiguous memory images: one call for every pixel.
	cmsDoTransform(t, VIPS_IMAGE_ADDR(mem, 0, 0), VIPS_IMAGE_ADDR(o, 0, 0),
		(cmsUInt32Number) ((size_t) mem->Xsize * mem->Ysize));
	g_object_unref(mem);
	*out = o;
	return 0;
}

// imgd_icc_lcms_srgb serialises lcms' own sRGB profile into a g_malloc'd
// buffer (tests build a tagged image with it).
void *imgd_icc_lcms_srgb(size_t *len) {
	*len = 0;
	if (!icc_ready())
		return NULL;
	cmsHPROFILE p = cmsCreate_sRGBProfileTHR(icc_ctx);
	cmsUInt32Number n = 0;
	if (!p || !cmsSaveProfileToMem(p, NULL, &n)) {
		if (p)
			cmsCloseProfile(p);
		return NULL;
	}
	void *buf = g_malloc(n);
	if (!cmsSaveProfileToMem(p, buf, &n)) {
		g_free(buf);
		buf = NULL;
		n = 0;
	}
	cmsCloseProfile(p);
	*len = n;
	return buf;
}

int imgd_icc_lcms_output(void) {
	return icc_ready() && out_lcms_srgb;
}
