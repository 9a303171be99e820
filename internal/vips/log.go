package vips

import "C"

import (
	"context"
	"log/slog"
	"sync/atomic"
)

var logger atomic.Pointer[slog.Logger]

// SetLogger receives libvips' warnings (decoder complaints such as
// "Corrupt JPEG data"), at debug level: they describe inputs, not faults
// of imgd, and the engine reports failures by their stage.
func SetLogger(l *slog.Logger) { logger.Store(l) }

//export imgdLog
func imgdLog(level C.int, msg *C.char) {
	l := logger.Load()
	if l == nil || !l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.Debug("libvips", "message", C.GoString(msg), "glib_level", int(level))
}
