package httpapi

import "time"

// SetHeartbeatInterval sets the idle interval of event streams opened from
// now on and returns a function restoring the default. Tests calling it
// must not run in parallel with other event stream tests.
func SetHeartbeatInterval(d time.Duration) (restore func()) {
	heartbeatInterval.Store(int64(d))
	return func() { heartbeatInterval.Store(0) }
}
