// Fixed-arity shims over libvips' variadic API: cgo cannot call variadic C.
#include <stdlib.h>
#include <vips/vips.h>

// Input formats, mirrored by constants in vips.go.
enum {
	IMGD_JPEG = 1,
	IMGD_PNG,
	IMGD_WEBP,
	IMGD_HEIF,
	IMGD_GIF,
	IMGD_TIFF,
	IMGD_BMP,
	IMGD_SVG,
	IMGD_JXL,
};

typedef struct {
	int format;      // IMGD_*
	int n;           // pages to load: 1, or -1 for all
	int fail_on;     // VipsFailOn
	int sequential;  // VIPS_ACCESS_SEQUENTIAL when true
	int shrink;      // JPEG: DCT-domain shrink 1, 2, 4 or 8
} imgd_load_opts;

typedef struct {
	int width, height;
	int size;     // VipsSize
	int crop;     // VipsInteresting
	int n;        // pages: 1 or -1
	int fail_on;  // VipsFailOn
} imgd_thumb_opts;

// imgd_jpeg_thumbnail's options (jpeg.c).
typedef struct {
	int width, height;      // output size, upright
	int orientation;        // EXIF orientation 1..8, applied after the reduce
	int fail_on;            // VipsFailOn
	int kernel;             // VipsKernel of the final reduce
	int full_scans;         // decode every scan of progressive files
	double max_decode_pixels;  // larger scaled decodes return 1 (not applicable)
	double max_input_pixels;   // larger images fail; 0: no limit
} imgd_jpeg_thumb_opts;

typedef struct {
	int format;       // IMGD_JPEG, IMGD_PNG, IMGD_WEBP, IMGD_HEIF (AVIF), IMGD_GIF, IMGD_TIFF
	int quality;      // 1..100; 0 = encoder default
	int lossless;
	int progressive;  // JPEG progressive, PNG/GIF interlace
	int strip;
	int palette;      // PNG: quantise to a palette
	int effort;       // encoder effort / speed trade-off, 0 = default
} imgd_save_opts;

typedef struct {
	int width, height, bands, page_height, n_pages, orientation, has_alpha;
	int interpretation, format;  // VipsInterpretation, VipsBandFormat
	int has_profile;
	int cmyk;
} imgd_header;

int imgd_init(void);
void imgd_apply_loader_policy(void);
void imgd_modules_defer(void);
void imgd_modules_restore_env(void);
int imgd_module_load(const char *name);
int imgd_loader_state(const char *name);
const char *imgd_module_dir(void);
void imgd_thread_done(void);
void imgd_unref(VipsImage *im);

int imgd_load(const void *buf, size_t len, imgd_load_opts *o, VipsImage **out);
int imgd_thumbnail(const void *buf, size_t len, imgd_thumb_opts *o, VipsImage **out);
int imgd_jpeg_thumbnail(const void *buf, size_t len, imgd_jpeg_thumb_opts *o, VipsImage **out);
void imgd_header_of(VipsImage *im, imgd_header *h);

int imgd_autorot(VipsImage *in, VipsImage **out);
int imgd_to_srgb(VipsImage *in, VipsImage **out);
int imgd_to_uchar_rgb(VipsImage *in, VipsImage **out);
int imgd_resize(VipsImage *in, VipsImage **out, double hscale, double vscale);
int imgd_thumbnail_image(VipsImage *in, VipsImage **out, int width, int height);
int imgd_shrink(VipsImage *in, VipsImage **out, int factor);
int imgd_crop(VipsImage *in, VipsImage **out, int x, int y, int w, int h);
int imgd_smartcrop(VipsImage *in, VipsImage **out, int w, int h, int interesting);
int imgd_embed(VipsImage *in, VipsImage **out, int x, int y, int w, int h, double *bg, int nbg);
int imgd_rot(VipsImage *in, VipsImage **out, int angle);
int imgd_rotate(VipsImage *in, VipsImage **out, double angle, double *bg, int nbg);
int imgd_flip(VipsImage *in, VipsImage **out, int vertical);
int imgd_grayscale(VipsImage *in, VipsImage **out);
int imgd_flatten(VipsImage *in, VipsImage **out, double r, double g, double b);
int imgd_add_alpha(VipsImage *in, VipsImage **out);
int imgd_join_pages(VipsImage **in, int n, VipsImage **out);
int imgd_set_pages(VipsImage *in, VipsImage **out, int page_height);
int imgd_strip_orientation(VipsImage *in, VipsImage **out);

void *imgd_to_memory(VipsImage *in, size_t *len);
int imgd_from_memory(const void *data, size_t len, int width, int height, int bands, VipsImage *like, VipsImage **out);

int imgd_save(VipsImage *in, imgd_save_opts *o, void **buf, size_t *len);
int imgd_copy_jpeg_meta(VipsImage *in, const void *buf, size_t len, VipsImage **out);
int imgd_copy_memory(VipsImage *in, VipsImage **out);
int imgd_decode_check(VipsImage *in);

// icc.c: colour conversion of small in-memory images on little-cms.
enum {
	IMGD_ICC_RGB8 = 1,   // 8-bit RGB in
	IMGD_ICC_CMYK8 = 2,  // 8-bit CMYK in
};
enum {
	IMGD_ICC_OK = 0,
	IMGD_ICC_SRGB = 1,    // profile is colorimetrically sRGB: no transform needed
	IMGD_ICC_BROKEN = 2,  // lcms cannot use it: fall back to imgd_to_srgb
};
const void *imgd_icc_builtin(int which, size_t *len);
int imgd_icc_inspect(VipsImage *in, const void **data, size_t *len);
void *imgd_icc_new(const void *data, size_t len, int format, unsigned flags, int check_srgb, int *status);
void imgd_icc_free(void *t);
void imgd_icc_do(void *t, const void *in, void *out, size_t n);
int imgd_icc_apply(VipsImage *in, void *t, VipsImage **out);
void *imgd_icc_lcms_srgb(size_t *len);
int imgd_drop_profile(VipsImage *in, VipsImage **out);
int imgd_icc_lcms_output(void);
