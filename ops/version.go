package ops

import (
	"runtime/debug"
)

// buildVersion is set by the Makefile (-ldflags -X
// ctrfs/ops.buildVersion=...) to `git describe --dirty`; a plain `go build`
// falls back to what the build recorded.
var buildVersion = ""

// Version is this build's version, as `ctrfs version` and bug reports
// show it.
func Version() string {
	if buildVersion != "" {
		return buildVersion
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev != "" && dirty:
		return rev + "-dirty"
	case rev != "":
		return rev
	case info.Main.Version != "" && info.Main.Version != "(devel)":
		return info.Main.Version
	}
	return "devel"
}
