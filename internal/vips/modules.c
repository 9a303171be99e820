// Deferred loading of libvips' dynamic modules.
//
// Debian's libvips 8.14 is built with modules (heif, jxl, magick, poppler,
// openslide) and vips_init() loads them all, with their libraries
// (ImageMagick, poppler, libheif with its codecs, ...): vips_init took
// 41 ms of CPU instead of 5 ms, and `imgd process` of one small JPEG
// 0.19 instead of 0.15 CPU-s (user+sys, median of 21 runs). JPEG, PNG,
// WebP, GIF, TIFF and SVG are built into libvips itself, so a batch of
// photos needs none of them. vips_init() finds the modules under
// $VIPSHOME/<libdir>/vips-modules-X.Y and has no switch to skip them, so
// init points VIPSHOME at a directory that does not exist, restores it,
// and imgd_module_load() opens a module the first time a format needs it
// (heif for HEIC/AVIF in and AVIF out, jxl, magick for BMP). poppler and
// openslide are never loaded: their loaders are blocked anyway.
#define _GNU_SOURCE
#include <link.h>
#include <string.h>
#include <gmodule.h>

#include "vips.h"

static char *module_dir;  // NULL: modules are loaded by vips_init, or built in
static char *saved_vipshome;
static gboolean had_vipshome;

static int find_libvips(struct dl_phdr_info *info, size_t size, void *data) {
	char **dir = data;
	const char *base = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
	if (base && g_str_has_prefix(base + 1, "libvips.so")) {
		*dir = g_path_get_dirname(info->dlpi_name);
		return 1;
	}
	return 0;
}

void imgd_modules_defer(void) {
	char *libdir = NULL;
	dl_iterate_phdr(find_libvips, &libdir);
	if (!libdir)
		return;
	// The runtime library's version names the directory, as in vips_init.
	char *dir = g_strdup_printf("%s/vips-modules-%d.%d", libdir, vips_version(0), vips_version(1));
	g_free(libdir);
	if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
		g_free(dir);
		return;
	}
	module_dir = dir;
	had_vipshome = g_getenv("VIPSHOME") != NULL;
	saved_vipshome = g_strdup(g_getenv("VIPSHOME"));
	g_setenv("VIPSHOME", "/nonexistent/imgd-modules-deferred", TRUE);
}

void imgd_modules_restore_env(void) {
	if (!module_dir)
		return;
	if (had_vipshome)
		g_setenv("VIPSHOME", saved_vipshome, TRUE);
	else
		g_unsetenv("VIPSHOME");
}

// imgd_module_load opens vips-<name>.so from the module directory, if
// loading was deferred and the module exists, and applies the loader
// policy to the classes it registered. Callers serialise calls per name.
int imgd_module_load(const char *name) {
	if (!module_dir)
		return 0;
	char *path = g_strdup_printf("%s/vips-%s.so", module_dir, name);
	if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_free(path);
		return 0;
	}
	// Kept open for the life of the process, as vips_init would.
	GModule *m = g_module_open(path, G_MODULE_BIND_LAZY);
	if (!m) {
		vips_error("imgd", "cannot load libvips module %s: %s", path, g_module_error());
		g_free(path);
		return -1;
	}
	g_free(path);
	imgd_apply_loader_policy();
	return 0;
}

// imgd_loader_state is -1 when no class has that name, else whether it is
// blocked (for tests).
int imgd_loader_state(const char *name) {
	GType t = g_type_from_name(name);
	if (!t || G_TYPE_IS_ABSTRACT(t) || !g_type_is_a(t, VIPS_TYPE_OPERATION))
		return -1;
	VipsOperationClass *c = g_type_class_ref(t);
	int blocked = (c->flags & VIPS_OPERATION_BLOCKED) != 0;
	g_type_class_unref(c);
	return blocked;
}

const char *imgd_module_dir(void) {
	return module_dir ? module_dir : "";
}
