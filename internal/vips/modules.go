package vips

/*
#cgo pkg-config: gmodule-2.0
#include <stdlib.h>
#include "vips.h"
*/
import "C"

import (
	"sync"
	"unsafe"
)

// Deferred libvips modules (see modules.c): the formats that need each.
var modules = []struct {
	name    string
	formats []Format
	once    sync.Once
	err     error
}{
	{name: "heif", formats: []Format{HEIF}},
	{name: "jxl", formats: []Format{JXL}},
	{name: "magick", formats: []Format{BMP}},
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
