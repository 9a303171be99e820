package vips

/*
#cgo pkg-config: gmodule-2.0
#include <stdlib.h>
#include "vips.h"
*/
import "C"

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Deferred libvips modules (see modules.c): the formats that need each.
var modules = []struct {
	name    string
	formats []Format
	once    sync.Once
	loaded  atomic.Bool // once has run
	err     error
}{
	{name: "heif", formats: []Format{HEIF}},
	{name: "jxl", formats: []Format{JXL}},
	{name: "magick", formats: []Format{BMP}},
}

// activity keeps module loading apart from libvips work in flight: a
// module registering its classes while another thread looks classes up
// aborts the whole process (GLib assertion in vips_class_build_hash_cb,
// seen with HEIF and BMP tests running beside other work).
var activity sync.RWMutex

// Enter marks libvips work in progress until leave is called; Prepare
// waits for it. Work that may need a deferred module calls Prepare first,
// not while inside Enter (Prepare would wait for itself).
func Enter() (leave func()) {
	activity.RLock()
	return activity.RUnlock
}

// Prepare loads the modules that the formats need, once, while no libvips
// work is in progress. Formats that need no module return at once.
func Prepare(formats ...Format) error {
	for _, f := range formats {
		for i := range modules {
			m := &modules[i]
			if m.loaded.Load() || !slices.Contains(m.formats, f) {
				continue
			}
			activity.Lock()
			err := needModule(f)
			activity.Unlock()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// needModule loads the libvips module that reads or writes f, once per
// process; f == 0 (unknown) loads them all. It is a no-op when libvips
// loaded its modules itself or has the formats built in.
func needModule(f Format) error {
	for i := range modules {
		m := &modules[i]
		want := f == 0
		for _, mf := range m.formats {
			want = want || mf == f
		}
		if !want {
			continue
		}
		m.once.Do(func() {
			name := C.CString(m.name)
			defer C.free(unsafe.Pointer(name))
			if C.imgd_module_load(name) != 0 {
				m.err = takeError("module " + m.name)
			}
			m.loaded.Store(true)
		})
		if m.err != nil {
			return m.err
		}
	}
	return nil
}

// loaderState says whether a loader class is registered and blocked; for
// tests.
func loaderState(class string) (registered, blocked bool) {
	name := C.CString(class)
	defer C.free(unsafe.Pointer(name))
	switch C.imgd_loader_state(name) {
	case 0:
		return true, false
	case 1:
		return true, true
	}
	return false, false
}

// moduleDirectory is where deferred modules load from ("" if none).
func moduleDirectory() string { return C.GoString(C.imgd_module_dir()) }
