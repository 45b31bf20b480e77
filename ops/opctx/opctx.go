// Package opctx is what one operation on a container reports besides its
// error: the LXC/CRIU log that becomes the container's `log`, the figures
// that `info` shows after it (phase timings, CRIU's statistics), and its
// progress while it runs. ops makes one per operation and keeps what it
// reports; the code that does the work (ops and the packages below it)
// fills it in. It knows nothing of containers, locks, LXC or the store.
package opctx

import (
	"fmt"
	"time"
)

// KeyValue is one `key: value` line of an `info` file.
type KeyValue struct{ Key, Value string }

// Op collects what an operation reports besides its error.
type Op struct {
	Log      []byte
	HasLog   bool       // Log was set, even to nothing: it replaces the last `log`
	Extra    []KeyValue // figures for `info`, in the order reported
	Progress *Progress  // nil outside an operation that `info` follows
}

// SetLog makes b the operation's log.
func (o *Op) SetLog(b []byte) { o.Log, o.HasLog = b, true }

// Report adds figures for `info`.
func (o *Op) Report(kv ...KeyValue) { o.Extra = append(o.Extra, kv...) }

// Seconds is a duration as `info` shows it, in seconds with milliseconds.
func Seconds(key string, d time.Duration) KeyValue {
	return KeyValue{key, fmt.Sprintf("%.3f", d.Seconds())}
}

// Micros is Seconds of CRIU's figures, which are microseconds.
func Micros(key string, us uint32) KeyValue {
	return Seconds(key, time.Duration(us)*time.Microsecond)
}
