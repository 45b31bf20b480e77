package lxchelper

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	lxc "github.com/lxc/go-lxc"
)

// Why limits are set again after a restore: on a host with cgroup2 alone
// LXC sets a container's lxc.cgroup2.* limits (memory.max, pids.max, …)
// in its cgroup at start (cgfsng setup_limits), but LXC 5.0.2's restore
// never does (upstream LXC's commit f30cbb86f added it), and CRIU brings
// back none of cgroup2's controller files (only cgroup.max.depth,
// cgroup.max.descendants, cgroup.subtree_control and such): a container
// restored from saved state, a stateful snapshot or a move ran without its
// limits. Other layouts are left alone: LXC ignores lxc.cgroup2.* there.

// reapplyCgroup2Limits writes the container's lxc.cgroup2.* limits into
// its cgroup, as LXC's start does. What it cannot do is said in the LXC
// log (the container runs restored, and failing now would not stop it).
// Device rules (lxc.cgroup2.devices.*) are a BPF program that LXC attaches
// at start: they cannot be set so, and are named.
func reapplyCgroup2Limits(c *lxc.Container) {
	limits := cgroup2Limits(c)
	if len(limits) == 0 || !pureUnified() {
		return
	}
	var failed []string
	roots, err := containerCgroups(c.InitPid())
	if err != nil {
		failed = append(failed, "all: "+err.Error())
	}
	dir := filepath.Join("/sys/fs/cgroup", roots[unifiedHierarchy])
	for _, l := range limits {
		switch {
		case err != nil:
		case strings.HasPrefix(l[0], "devices"):
			failed = append(failed, l[0]+": LXC sets device rules only at a start")
		case !filepath.IsLocal(l[0]) || strings.Contains(l[0], "/"):
			failed = append(failed, l[0]+": not a cgroup file")
		default:
			if werr := os.WriteFile(filepath.Join(dir, l[0]), []byte(l[1]), 0); werr != nil {
				failed = append(failed, fmt.Sprintf("%s = %s: %v", l[0], l[1], werr))
			}
		}
	}
	if len(failed) > 0 {
		msg := fmt.Sprintf("%s was restored without these lxc.cgroup2 limits: %s", c.Name(), strings.Join(failed, "; "))
		fmt.Fprintln(os.Stderr, msg)
		appendToLog(c.LogFile(), "WARN", msg)
	}
}

// cgroup2Limits are the container's lxc.cgroup2.* lines, in config order,
// as key (the cgroup file) and value.
func cgroup2Limits(c *lxc.Container) [][2]string {
	var out [][2]string
	for _, l := range c.ConfigItem("lxc.cgroup2") {
		key, value, ok := strings.Cut(l, "=")
		key, found := strings.CutPrefix(strings.TrimSpace(key), "lxc.cgroup2.")
		if ok && found && key != "" {
			out = append(out, [2]string{key, strings.TrimSpace(value)})
		}
	}
	return out
}

// appendToLog adds a line of ctrfs's own to an LXC log, in LXC's layout
// (the level between spaces), so that `log` and criulog.LastError see it.
func appendToLog(logFile, level, msg string) {
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "ctrfs %s %s %s\n", time.Now().UTC().Format("20060102150405.000"), level, msg)
}
