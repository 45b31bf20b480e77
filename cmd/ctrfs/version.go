package main

import (
	"fmt"
	"runtime"

	"ctrfs/cluster"
	"ctrfs/ops"
	"ctrfs/ops/lazypages"
)

const versionHead = `usage: ctrfs version

Prints the versions of ctrfs, and of the CRIU and LXC it runs with, and
whether CRIU's lazy pages (move --post-copy) work on this host, and if
not, why (on hosts whose root lacks CAP_SYS_RESOURCE, the sysctl to set).
`

// versions is `ctrfs version`: ctrfs's version and the CRIU and LXC this
// host would checkpoint and migrate with (the same facts peers compare).
func versions(args []string) int {
	if code, stop := parseFlags(newFlagSet("version"), versionHead, args, noArgs); stop {
		return code
	}
	facts := cluster.LocalFacts("", "", ops.LXCVersion())
	fmt.Printf("ctrfs %s (%s)\ncriu %s\nlxc %s\n", ops.Version(), runtime.Version(),
		orMissing(facts.CRIU), orMissing(facts.LXC))
	if err := lazypages.Probe(); err != nil {
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
