package lxchelper

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"
)

// Why ctrfs runs `criu dump` itself: LXC 5.0.2's restore (criu.c
// do_restore) never runs cgroup_ops->finalize, which is where LXC finds
// cgroup2's freezer, so on a host with cgroup2 alone the monitor of a
// container that LXC restored answers no "freezer" limit cgroup, and
// every dump of it fails in exec_criu ("Failed getting freezer path")
// before CRIU runs: nothing has happened to the container. Upstream LXC
// fixed it in commit f30cbb86f ("lxc/criu: restore cgroup limits and
// freezer on restore"). The monitor still answers everything else (state,
// init's pid, stop), and LXC's restore is not affected, so ctrfs then
// runs CRIU with the command line that exec_criu would have built and
// leaves the rest to LXC as usual: the images are the same as LXC's.

// lxcLostFreezer matches the LXC log lines of that failure.
var lxcLostFreezer = regexp.MustCompile(`Failed getting freezer path|Failed to retrieve limit cgroup path`)

// dumpWithoutLXC is checkpoint's way out when LXC's own dump failed as
// above (LXC's log in logFile says so): it runs CRIU directly, and says so
// in the log (instead of LXC's errors, which would explain a failure of
// its own wrongly). false if LXC failed for another reason.
func dumpWithoutLXC(c *lxc.Container, logFile string, d dumpRun, killed bool) (bool, error) {
	log, _ := os.ReadFile(logFile)
	if !lxcLostFreezer.Match(log) {
		return false, nil
	}
	args, err := criuDumpArgs(c, d)
	if err != nil {
		err = fmt.Errorf("LXC cannot dump %s, which it restored on this host with cgroup2 alone (LXC before its commit f30cbb86f: Debian 12's 5.0.2), and ctrfs cannot dump it without LXC: %v", c.Name(), err)
		noteInLog(logFile, "ERROR", err.Error())
		return true, err
	}
	noteInLog(logFile, "INFO", fmt.Sprintf("LXC cannot dump %s, which it restored on this host with cgroup2 alone (its restore never looked for the freezer: LXC before its commit f30cbb86f), so ctrfs runs: criu %s", c.Name(), strings.Join(args, " ")))
	return true, runCriuDump(c, args, killed)
}

// noteInLog replaces LXC's log of the failed attempt with one line in its
// format, so that `log` and the error tell what ctrfs did instead.
func noteInLog(logFile, level, msg string) {
	os.Truncate(logFile, 0)
	appendToLog(logFile, level, msg)
}

// criuDumpArgs is the command line (without "criu") that LXC 5.0.2's
// exec_criu builds for a dump or pre-dump of a running container on a host
// with cgroup2 alone, with what checkpoint uses: no page server, ghost
// limit or action script (those come from the CRIU config file, if at
// all), inodes not preserved, not verbose (the config file sets the
// verbosity).
func criuDumpArgs(c *lxc.Container, d dumpRun) ([]string, error) {
	if p := configValue(c, "lxc.console.path"); p != "none" {
		// exec_criu would add the console as an external tty.
		return nil, fmt.Errorf("it has a console (lxc.console.path = %q); set lxc.console.path = none", p)
	}
	if v := configValue(c, "lxc.cgroup.dir.container.inner"); v != "" {
		// The container's limit cgroup would not be its namespace's root.
		return nil, fmt.Errorf("it has lxc.cgroup.dir.container.inner = %s", v)
	}
	if !pureUnified() {
		return nil, errors.New("this host has cgroup v1 hierarchies mounted")
	}
	pid := c.InitPid()
	if pid <= 0 {
		return nil, errors.New("it has no init process")
	}
	roots, err := containerCgroups(pid)
	if err != nil {
		return nil, err
	}
	cg, ok := roots[unifiedHierarchy]
	if !ok || cg == "/" {
		return nil, fmt.Errorf("its init (pid %d) is in no cgroup2 cgroup of its own", pid)
	}
	return execCriuDumpArgs(d, cg, baseControllers(), c.ConfigItem("lxc.mount.entry"), pid), nil
}

// execCriuDumpArgs is exec_criu's dump or pre-dump command line, in its
// order, for the container whose init is pid and whose cgroup (the root of
// its cgroup namespace) is cgroup; controllers are the unified hierarchy's
// as LXC lists them (baseControllers), mountEntries its lxc.mount.entry
// lines.
func execCriuDumpArgs(d dumpRun, cgroup string, controllers, mountEntries []string, pid int) []string {
	// The limit cgroup as the monitor answers it: relative, no slash.
	limit := strings.Trim(filepath.Clean(cgroup), "/")
	root := limit
	if len(controllers) > 0 {
		root = strings.Join(controllers, ",") + ":" + limit
	}
	args := []string{d.action(), "--tcp-established", "--file-locks", "--link-remap",
		"--manage-cgroups=full", "--ext-mount-map", "auto",
		"--enable-external-sharing", "--enable-external-masters",
		"--enable-fs", "hugetlbfs", "--enable-fs", "tracefs",
		"-D", d.dir, "-o", filepath.Join(d.dir, d.action()+".log"),
		"--cgroup-root", root}
	for _, entry := range mountEntries {
		if target, ok := bindMountTarget(entry); ok {
			// exec_criu maps the target to itself for a dump, to
			// the source for a pre-dump.
			m := "/" + target + ":" + target
			if d.preDump {
				m = target + ":" + UnescapeMountPath(strings.Fields(entry)[0])
			}
			args = append(args, "--ext-mount-map", m)
		}
	}
	args = append(args, "-t", strconv.Itoa(pid), "--skip-in-flight",
		"--freeze-cgroup", filepath.Join("/sys/fs/cgroup", limit))
	if d.parent != "" {
		args = append(args, "--prev-images-dir", d.parent, "--track-mem")
	}
	args = append(args, "--force-irmap")
	if !d.stop && !d.preDump { // a pre-dump always leaves the tasks running
		args = append(args, "--leave-running")
	}
	return args
}

// configValue is a config item's single value, "" if unset (LXC then
// prints a C null string).
func configValue(c *lxc.Container, key string) string {
	v := strings.TrimSpace(strings.Join(c.ConfigItem(key), "\n"))
	if v == "(null)" {
		return ""
	}
	return v
}

// pureUnified says whether /sys/fs/cgroup is cgroup2 (LXC's
// pure_unified_layout) and no v1 hierarchy is mounted.
func pureUnified() bool {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return false
	}
	mounts, err := cgroupMounts()
	return err == nil && len(mounts) == 1 && mounts[0].id == unifiedHierarchy
}

// baseControllers are the cgroup2 controllers that LXC lists for the
// unified hierarchy: those of init's cgroup (a root caller's base, less
// systemd's init.scope), as its cgroup.controllers names them.
func baseControllers() []string {
	data, err := os.ReadFile("/proc/1/cgroup")
	if err != nil {
		return nil
	}
	base := strings.TrimSuffix(procCgroups(data)[unifiedHierarchy], "/init.scope")
	ctrls, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", base, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(ctrls))
}

// bindMountTarget is the target of an lxc.mount.entry (an fstab line,
// target relative to the rootfs) that bind-mounts, as getmntent(3) reads
// it.
func bindMountTarget(entry string) (string, bool) {
	f := strings.Fields(entry)
	if len(f) < 4 {
		return "", false
	}
	for _, o := range strings.Split(f[3], ",") {
		if o == "bind" || o == "rbind" {
			return UnescapeMountPath(f[1]), true
		}
	}
	return "", false
}

// runCriuDump runs CRIU as LXC's do_dump does: from the root cgroup
// (exec_criu's criu_escape), output kept for the error. It inherits
// CRIU_CONFIG_FILE, this thread's priority and the config file's options.
// After a dump that killed the container's tasks, the monitor sees init
// die and ends STOPPED, as after LXC's own dump; this waits for that.
func runCriuDump(c *lxc.Container, args []string, killed bool) error {
	criu, err := exec.LookPath("criu")
	if err != nil {
		return err
	}
	root, err := os.Open("/sys/fs/cgroup")
	if err != nil {
		return err
	}
	defer root.Close()
	var out bytes.Buffer
	cmd := exec.Command(criu, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	// It dies with the helper too, however the helper ends (checkpoint
	// locked this thread, so the thread lives as long as the helper).
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(root.Fd()), Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("criu dump failed (%v): %s", err, strings.TrimSpace(out.String()))
	}
	if killed && !c.Wait(lxc.STOPPED, 30*time.Second) {
		return errors.New("CRIU dumped the container but it is not STOPPED 30s later")
	}
	return nil
}
