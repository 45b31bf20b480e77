package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"ctrfs/cluster"
	"ctrfs/ops"
)

// version is set by the Makefile (-ldflags -X main.version=...) to `git
// describe`; a plain `go build` falls back to what the build recorded.
var version = ""

const versionHead = `usage: ctrfs version

Prints the versions of ctrfs, and of the CRIU and LXC it runs with, and
whether CRIU's lazy pages (move --post-copy) work on this host, and if
not, why (on hosts whose root lacks CAP_SYS_RESOURCE, the sysctl to set).
`

// ctrfsVersion is this build's version.
func ctrfsVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	if info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "devel"
}

// versions is `ctrfs version`: ctrfs's version and the CRIU and LXC this
// host would checkpoint and migrate with (the same facts peers compare).
func versions(args []string) int {
	if code, stop := parseFlags(newFlagSet("version"), versionHead, args, noArgs); stop {
		return code
	}
	facts := cluster.LocalFacts("", "", ops.LXCVersion())
	fmt.Printf("ctrfs %s (%s)\ncriu %s\nlxc %s\n", ctrfsVersion(), runtime.Version(),
		orMissing(facts.CRIU), orMissing(facts.LXC))
	if err := ops.LazyPages(); err != nil {
		fmt.Printf("post-copy: not supported: %v\n", err)
	} else {
		fmt.Println("post-copy: supported")
	}
	return 0
}

func orMissing(v string) string {
	if v == "" {
		return "not found"
	}
	return v
}
