#include "vips.h"

// Loaders imgd accepts. Every other loader (PDF, ImageMagick's many coders,
// FITS, Matlab, …) stays blocked so that a file can only reach the decoder
// its sniffed format names. BMP is the one format read through ImageMagick.
static const char *allowed_loaders[] = {
	"VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadWebp",
	"VipsForeignLoadHeif", "VipsForeignLoadNsgif", "VipsForeignLoadTiff",
	"VipsForeignLoadSvg", "VipsForeignLoadJxl", "VipsForeignLoadMagick",
	NULL,
};

extern void imgdLog(int level, char *msg);

static void log_handler(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer user) {
	imgdLog((int) (level & G_LOG_LEVEL_MASK), (char *) msg);
}

int imgd_init(void) {
	imgd_modules_defer();  // modules.c
	int r = VIPS_INIT("imgd");
	imgd_modules_restore_env();
	if (r)
		return -1;
	g_log_set_handler("VIPS", G_LOG_LEVEL_MASK & ~(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL), log_handler, NULL);
	vips_cache_set_max(0);
	vips_cache_set_max_mem(0);
	vips_cache_set_max_files(0);
	vips_concurrency_set(1);
	imgd_apply_loader_policy();
	return 0;
}

static void *loader_policy(VipsOperationClass *class, void *a) {
	GType t = G_TYPE_FROM_CLASS(class);
	gboolean allowed = FALSE;
	for (const char **l = allowed_loaders; *l && !allowed; l++) {
		GType at = g_type_from_name(*l);
		allowed = at && g_type_is_a(t, at);
	}
	// Each class is written once with its final state, never blocked and
	// then unblocked: other threads may be loading images meanwhile.
	if (allowed)
		class->flags &= ~VIPS_OPERATION_BLOCKED;
	else
		class->flags |= VIPS_OPERATION_BLOCKED;
	return NULL;
}

// imgd_apply_loader_policy blocks every loader but allowed_loaders; it runs
// again after a deferred module registers more (modules.c).
void imgd_apply_loader_policy(void) {
	vips_class_map_all(g_type_from_name("VipsForeignLoad"), (VipsClassMapFn) loader_policy, NULL);
}

void imgd_thread_done(void) {
	vips_error_clear();
	vips_thread_shutdown();
}

void imgd_unref(VipsImage *im) {
	if (im)
		g_object_unref(im);
}

int imgd_load(const void *buf, size_t len, imgd_load_opts *o, VipsImage **out) {
	VipsAccess access = o->sequential ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM;
	void *b = (void *) buf;
	switch (o->format) {
	case IMGD_JPEG:
		return vips_jpegload_buffer(b, len, out, "access", access, "fail_on", o->fail_on,
			"shrink", o->shrink > 0 ? o->shrink : 1, NULL);
	case IMGD_PNG:
		return vips_pngload_buffer(b, len, out, "access", access, "fail_on", o->fail_on, NULL);
	case IMGD_WEBP:
		return vips_webpload_buffer(b, len, out, "access", access, "fail_on", o->fail_on, "n", o->n, NULL);
	case IMGD_HEIF:
		return vips_heifload_buffer(b, len, out, "access", access, "fail_on", o->fail_on, NULL);
	case IMGD_GIF:
		return vips_gifload_buffer(b, len, out, "access", access, "fail_on", o->fail_on, "n", o->n, NULL);
	case IMGD_TIFF:
		return vips_tiffload_buffer(b, len, out, "access", access, "fail_on", o->fail_on, NULL);
	case IMGD_BMP:
		return vips_magickload_buffer(b, len, out, "access", access, "fail_on", o->fail_on, NULL);
	case IMGD_SVG:
		return vips_svgload_buffer(b, len, out, "access", access, "fail_on", o->fail_on, NULL);
	case IMGD_JXL:
		return vips_jxlload_buffer(b, len, out, "access", access, "fail_on", o->fail_on, NULL);
	}
	vips_error("imgd", "unknown format %d", o->format);
	return -1;
}

int imgd_thumbnail(const void *buf, size_t len, imgd_thumb_opts *o, VipsImage **out) {
	// The loader's options travel in option_string; the thumbnailer's own
	// fail_on does not reach the shrink-on-load reload in libvips 8.14.
	static const char *levels[] = {"none", "truncated", "error", "warning"};
	char opts[64];
	int f = o->fail_on >= 0 && o->fail_on <= 3 ? o->fail_on : 0;
	snprintf(opts, sizeof(opts), "[fail_on=%s%s]", levels[f], o->n == -1 ? ",n=-1" : "");
	return vips_thumbnail_buffer((void *) buf, len, out, o->width,
		"height", o->height, "size", o->size, "crop", o->crop,
		"option_string", opts, "fail_on", o->fail_on, NULL);
}

void imgd_header_of(VipsImage *im, imgd_header *h) {
	int v;
	h->width = vips_image_get_width(im);
	h->height = vips_image_get_height(im);
	h->bands = vips_image_get_bands(im);
	h->page_height = vips_image_get_page_height(im);
	h->n_pages = vips_image_get_n_pages(im);
	h->orientation = 1;
	if (vips_image_get_typeof(im, VIPS_META_ORIENTATION) &&
		!vips_image_get_int(im, VIPS_META_ORIENTATION, &v) && v >= 1 && v <= 8)
		h->orientation = v;
	h->has_alpha = vips_image_hasalpha(im);
	h->interpretation = vips_image_guess_interpretation(im);
	h->format = vips_image_get_format(im);
	h->has_profile = vips_image_get_typeof(im, VIPS_META_ICC_NAME) != 0;
	h->cmyk = h->interpretation == VIPS_INTERPRETATION_CMYK;
}

int imgd_autorot(VipsImage *in, VipsImage **out) {
	return vips_autorot(in, out, NULL);
}

static int drop_profile(VipsImage *in, VipsImage **out) {
	if (vips_copy(in, out, NULL))
		return -1;
	vips_image_remove(*out, VIPS_META_ICC_NAME);
	return 0;
}

// imgd_drop_profile removes the colour profile of an image whose pixels
// are sRGB already (icc.go: a colorimetrically sRGB profile).
int imgd_drop_profile(VipsImage *in, VipsImage **out) {
	return drop_profile(in, out);
}

// imgd_to_srgb brings any input to 8-bit sRGB, or 8-bit grey for grey
// images, keeping alpha. Embedded profiles are applied (CMYK without one
// uses libvips' built-in CMYK profile) and then dropped: the pixels are sRGB.
int imgd_to_srgb(VipsImage *in, VipsImage **out) {
	VipsInterpretation interp = vips_image_guess_interpretation(in);
	gboolean profile = vips_image_get_typeof(in, VIPS_META_ICC_NAME) != 0;
	VipsImage *t = NULL;
	int r;

	if (interp == VIPS_INTERPRETATION_B_W || interp == VIPS_INTERPRETATION_GREY16) {
		if (in->BandFmt == VIPS_FORMAT_UCHAR)
			return drop_profile(in, out);
		if (vips_colourspace(in, &t, VIPS_INTERPRETATION_B_W, NULL))
			return -1;
		r = drop_profile(t, out);
		g_object_unref(t);
		return r;
	}
	if (profile || interp == VIPS_INTERPRETATION_CMYK) {
		const char *fallback = interp == VIPS_INTERPRETATION_CMYK ? "cmyk" : "srgb";
		if (!vips_icc_transform(in, &t, "srgb", "embedded", TRUE,
				"input_profile", fallback, "intent", VIPS_INTENT_RELATIVE, NULL)) {
			r = drop_profile(t, out);
			g_object_unref(t);
			return r;
		}
		// A broken embedded profile: ignore it rather than fail the image.
		vips_error_clear();
		if (interp == VIPS_INTERPRETATION_CMYK) {
			if (vips_icc_transform(in, &t, "srgb", "input_profile", "cmyk",
					"intent", VIPS_INTENT_RELATIVE, NULL))
				return -1;
			r = drop_profile(t, out);
			g_object_unref(t);
			return r;
		}
	}
	if (interp == VIPS_INTERPRETATION_sRGB && in->BandFmt == VIPS_FORMAT_UCHAR)
		return drop_profile(in, out);
	if (vips_colourspace(in, &t, VIPS_INTERPRETATION_sRGB, NULL))
		return -1;
	if (t->BandFmt != VIPS_FORMAT_UCHAR) {
		VipsImage *c;
		r = vips_cast(t, &c, VIPS_FORMAT_UCHAR, NULL);
		g_object_unref(t);
		if (r)
			return -1;
		t = c;
	}
	r = drop_profile(t, out);
	g_object_unref(t);
	return r;
}

// imgd_to_uchar_rgb turns an 8-bit grey or sRGB image into 3 or 4 bands.
int imgd_to_uchar_rgb(VipsImage *in, VipsImage **out) {
	if (in->Bands >= 3)
		return vips_copy(in, out, NULL);
	return vips_colourspace(in, out, VIPS_INTERPRETATION_sRGB, NULL);
}

int imgd_resize(VipsImage *in, VipsImage **out, double hscale, double vscale) {
	return vips_resize(in, out, hscale, "vscale", vscale, NULL);
}

int imgd_thumbnail_image(VipsImage *in, VipsImage **out, int width, int height) {
	return vips_thumbnail_image(in, out, width, "height", height, "size", VIPS_SIZE_FORCE,
		"no_rotate", TRUE, NULL);
}

int imgd_shrink(VipsImage *in, VipsImage **out, int factor) {
	return vips_shrink(in, out, (double) factor, (double) factor, NULL);
}

int imgd_crop(VipsImage *in, VipsImage **out, int x, int y, int w, int h) {
	return vips_extract_area(in, out, x, y, w, h, NULL);
}

int imgd_smartcrop(VipsImage *in, VipsImage **out, int w, int h, int interesting) {
	return vips_smartcrop(in, out, w, h, "interesting", interesting, NULL);
}

int imgd_embed(VipsImage *in, VipsImage **out, int x, int y, int w, int h, double *bg, int nbg) {
	VipsArrayDouble *a = vips_array_double_new(bg, nbg);
	int r = vips_embed(in, out, x, y, w, h, "extend", VIPS_EXTEND_BACKGROUND, "background", a, NULL);
	vips_area_unref(VIPS_AREA(a));
	return r;
}

int imgd_rot(VipsImage *in, VipsImage **out, int angle) {
	VipsAngle a = angle == 90 ? VIPS_ANGLE_D90 : angle == 180 ? VIPS_ANGLE_D180 :
		angle == 270 ? VIPS_ANGLE_D270 : VIPS_ANGLE_D0;
	return vips_rot(in, out, a, NULL);
}

int imgd_rotate(VipsImage *in, VipsImage **out, double angle, double *bg, int nbg) {
	VipsArrayDouble *a = vips_array_double_new(bg, nbg);
	int r = vips_rotate(in, out, angle, "background", a, NULL);
	vips_area_unref(VIPS_AREA(a));
	return r;
}

int imgd_flip(VipsImage *in, VipsImage **out, int vertical) {
	return vips_flip(in, out, vertical ? VIPS_DIRECTION_VERTICAL : VIPS_DIRECTION_HORIZONTAL, NULL);
}

int imgd_grayscale(VipsImage *in, VipsImage **out) {
	return vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, NULL);
}

int imgd_flatten(VipsImage *in, VipsImage **out, double r, double g, double b) {
	double bg[3] = {r, g, b};
	int n = in->Bands - 1 >= 3 ? 3 : 1;
	if (n == 1)
		bg[0] = (r + g + b) / 3;
	VipsArrayDouble *a = vips_array_double_new(bg, n);
	int ret = vips_flatten(in, out, "background", a, NULL);
	vips_area_unref(VIPS_AREA(a));
	return ret;
}

int imgd_add_alpha(VipsImage *in, VipsImage **out) {
	return vips_addalpha(in, out, NULL);
}

int imgd_join_pages(VipsImage **in, int n, VipsImage **out) {
	VipsImage *t;
	if (vips_arrayjoin(in, &t, n, "across", 1, NULL))
		return -1;
	int r = imgd_set_pages(t, out, vips_image_get_height(in[0]));
	g_object_unref(t);
	return r;
}

int imgd_set_pages(VipsImage *in, VipsImage **out, int page_height) {
	if (vips_copy(in, out, NULL))
		return -1;
	vips_image_set_int(*out, VIPS_META_PAGE_HEIGHT, page_height);
	return 0;
}

int imgd_strip_orientation(VipsImage *in, VipsImage **out) {
	if (vips_copy(in, out, NULL))
		return -1;
	vips_image_set_int(*out, VIPS_META_ORIENTATION, 1);
	return 0;
}

void *imgd_to_memory(VipsImage *in, size_t *len) {
	return vips_image_write_to_memory(in, len);
}

// imgd_from_memory wraps a copy of 8-bit pixels as an sRGB (or grey) image
// carrying like's animation metadata (page height, delays, loop).
int imgd_from_memory(const void *data, size_t len, int width, int height, int bands,
		VipsImage *like, VipsImage **out) {
	VipsImage *t = vips_image_new_from_memory_copy(data, len, width, height, bands, VIPS_FORMAT_UCHAR);
	if (!t)
		return -1;
	int r = vips_copy(t, out, "interpretation",
		bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W, NULL);
	g_object_unref(t);
	if (r)
		return -1;
	int *delay, n, v;
	if (vips_image_get_typeof(like, "delay") && !vips_image_get_array_int(like, "delay", &delay, &n))
		vips_image_set_array_int(*out, "delay", delay, n);
	if (vips_image_get_typeof(like, "loop") && !vips_image_get_int(like, "loop", &v))
		vips_image_set_int(*out, "loop", v);
	if (vips_image_get_typeof(like, VIPS_META_PAGE_HEIGHT) && !vips_image_get_int(like, VIPS_META_PAGE_HEIGHT, &v))
		vips_image_set_int(*out, VIPS_META_PAGE_HEIGHT, v);
	return 0;
}

int imgd_save(VipsImage *in, imgd_save_opts *o, void **buf, size_t *len) {
	switch (o->format) {
	case IMGD_JPEG:
		return vips_jpegsave_buffer(in, buf, len, "Q", o->quality ? o->quality : 80,
			"interlace", o->progressive, "strip", o->strip, "optimize_coding", TRUE, NULL);
	case IMGD_PNG:
		if (o->palette)
			return vips_pngsave_buffer(in, buf, len, "compression", 6, "interlace", o->progressive,
				"strip", o->strip, "palette", TRUE, "Q", o->quality ? o->quality : 100, NULL);
		return vips_pngsave_buffer(in, buf, len, "compression", 6, "interlace", o->progressive,
			"strip", o->strip, NULL);
	case IMGD_WEBP:
		return vips_webpsave_buffer(in, buf, len, "Q", o->quality ? o->quality : 80,
			"lossless", o->lossless, "strip", o->strip, "effort", o->effort ? o->effort : 4, NULL);
	case IMGD_HEIF:
		return vips_heifsave_buffer(in, buf, len, "Q", o->quality ? o->quality : 60,
			"lossless", o->lossless, "strip", o->strip, "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1,
			"effort", o->effort ? o->effort : 4, NULL);
	case IMGD_GIF:
		// effort 3 instead of 7: 4.4x less CPU for files ~3% larger
		// (measured on testdata/formats/gif-animated.gif at 200 px).
		return vips_gifsave_buffer(in, buf, len, "strip", o->strip,
			"effort", o->effort ? o->effort : 3, "interlace", o->progressive, NULL);
	case IMGD_TIFF:
		return vips_tiffsave_buffer(in, buf, len, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE,
			"predictor", VIPS_FOREIGN_TIFF_PREDICTOR_HORIZONTAL, "strip", o->strip, NULL);
	}
	vips_error("imgd", "cannot save format %d", o->format);
	return -1;
}

int imgd_copy_memory(VipsImage *in, VipsImage **out) {
	*out = vips_image_copy_memory(in);
	return *out ? 0 : -1;
}

// imgd_decode_check computes every pixel once (streaming, constant memory)
// and fails when the loader does.
int imgd_decode_check(VipsImage *in) {
	double avg;
	return vips_avg(in, &avg, NULL);
}
