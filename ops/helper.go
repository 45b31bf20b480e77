package ops

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	lxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"
)

// HelperMain is `ctrfs lxc-helper VERB LXCPATH NAME LOGFILE [ARGS…]`: the LXC
// calls that fork a long-lived monitor, run in a short-lived process of
// their own (see Config.HelperPath). It returns the exit code.
func HelperMain(args []string) int {
	if len(args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs lxc-helper VERB LXCPATH NAME LOGFILE [ARGS…]")
		return 2
	}
	verb, lxcpath, name, logFile, rest := args[0], args[1], args[2], args[3], args[4:]
	c, err := lxc.NewContainer(name, lxcpath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Release()
	c.SetLogFile(logFile)
	c.SetLogLevel(lxc.INFO)
	c.WantCloseAllFds(true)
	switch verb {
	case "start":
		err = c.Start()
		if err == nil && !c.Wait(lxc.RUNNING, 30*time.Second) {
			err = fmt.Errorf("not running 30s after start")
		}
	case "checkpoint":
		if len(rest) != 1 {
			err = fmt.Errorf("checkpoint takes the image directory")
			break
		}
		err = checkpoint(c, lxcpath, rest[0], true)
	case "checkpoint-running":
		switch len(rest) {
		case 1:
			err = checkpoint(c, lxcpath, rest[0], false)
		case 3, 4:
			err = checkpointWithRootfs(c, lxcpath, rest[0], rest[1], rest[2], rest[3:]...)
		default:
			err = fmt.Errorf("checkpoint-running takes the image directory, and optionally the rootfs, its archive and tar's incremental state")
		}
	case "checkpoint-lazy":
		// DIR ADDR PORT TLSDIR: see lazydump.go. The tasks are kept
		// stopped whatever the end of the transfer, never killed by
		// CRIU; the page server speaks TLS only (pagetls.go).
		if len(rest) != 4 {
			err = fmt.Errorf("checkpoint-lazy takes the image directory, the page server's address and port, and its TLS directory")
			break
		}
		lazy := []string{"lazy-pages", "leave-stopped", "address " + rest[1], "port " + rest[2]}
		err = checkpoint(c, lxcpath, rest[0], true, append(lazy, criuTLS(rest[3])...)...)
	case "restore", "restore-frozen":
		var opts restoreOptions
		opts, err = parseRestoreArgs(verb, rest)
		if err != nil {
			break
		}
		err = restoreContainer(c, lxcpath, opts)
		if err == nil {
			reapplyCgroup2Limits(c)
		}
		if err == nil && verb == "restore-frozen" {
			// Here, not in the daemon, so that a daemon that dies
			// meanwhile cannot leave it running.
			err = freezeWithin(c, freezeLimit)
		}
	case "announce":
		err = announce(c)
	default:
		err = fmt.Errorf("unknown helper verb %q", verb)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// archiveHook is a CRIU action script that archives the rootfs after a dump
// while the processes are still frozen, so that the archive holds the files
// as the dumped processes last saw them: the whole tree, or with tar's
// incremental state of an archive made before, what changed since.
const archiveHook = `#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0
exec "$CTRFS_HELPER" archive-rootfs "$CTRFS_ROOTFS" "$CTRFS_ARCHIVE" ${CTRFS_TAR_STATE:+"$CTRFS_TAR_STATE"}
`

// freezeTimeout is CRIU's --timeout for freezing and seizing the tasks
// (10 s by default). A dump that cannot seize a task in time fails and is
// tried again (see Manager.dump), so a shorter timeout makes each failed
// attempt stall the container for less.
const freezeTimeout = "timeout 3"

// criuVerbosity makes CRIU's log (the `log` file) tell what a bug report
// needs; errors alone rarely say why.
const criuVerbosity = "verbosity 4"

// checkpoint dumps the container into dir, and stops it or leaves it
// running; config are extra lines of CRIU configuration. The container's
// own options (its criu file) come last, and its cgroups are recorded
// beside the images (see recordCgroups).
func checkpoint(c *lxc.Container, lxcpath, dir string, stop bool, config ...string) error {
	// The daemon stores the images while CRIU writes them, on the same
	// cores; CRIU keeps the container frozen meanwhile, so it goes first.
	// (Not for restores: the restored container's monitor would inherit
	// the priority for good.) Priority is per thread: LXC forks CRIU from
	// this one.
	runtime.LockOSThread()
	unix.Setpriority(unix.PRIO_PROCESS, 0, -10)
	own, err := readCriuOptions(lxcpath, c.Name(), "dump")
	if err != nil {
		return err
	}
	if err := recordCgroups(c.InitPid(), dir); err != nil {
		// The restore of most containers does without them.
		fmt.Fprintf(os.Stderr, "cannot record the cgroups of %s: %v\n", c.Name(), err)
	}
	conf, err := criuConfig(append(append(config, freezeTimeout, criuVerbosity), own...)...)
	if err != nil {
		return err
	}
	defer os.Remove(conf)
	if err := os.Setenv("CRIU_CONFIG_FILE", conf); err != nil {
		return err
	}
	err = c.Checkpoint(lxc.CheckpointOptions{Directory: dir, Stop: stop})
	if err != nil {
		// A lazy dump's tasks are kept stopped (lazydump.go), not
		// killed: the container does not end STOPPED then.
		killed := stop && !slices.Contains(config, "leave-stopped")
		if tried, derr := dumpWithoutLXC(c, c.LogFile(), dir, stop, killed); tried {
			return derr
		}
	}
	return err
}

// checkpointWithRootfs dumps the container's processes into dir and leaves
// them running; CRIU's post-dump hook archives the rootfs meanwhile, only
// what changed since the archive whose incremental state is given, if it is.
func checkpointWithRootfs(c *lxc.Container, lxcpath, dir, rootfs, archive string, state ...string) error {
	env := map[string]string{"CTRFS_ROOTFS": rootfs, "CTRFS_ARCHIVE": archive, "CTRFS_TAR_STATE": ""}
	if len(state) > 0 {
		env["CTRFS_TAR_STATE"] = state[0]
	}
	hook, err := actionScript(archiveHook, env)
	if err != nil {
		return err
	}
	defer os.Remove(hook)
	if err := checkpoint(c, lxcpath, dir, false, "action-script "+hook); err != nil {
		return err
	}
	if _, err := os.Stat(archive); err != nil {
		return fmt.Errorf("the rootfs was not archived during the dump: %w", err)
	}
	return nil
}

// actionScript writes a CRIU action script that runs this binary, with env
// set for it; the caller removes it.
func actionScript(script string, env map[string]string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	env["CTRFS_HELPER"] = self
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			return "", err
		}
	}
	return writeTemp("ctrfs-hook-*", script, 0o700)
}

// criuConfig writes a CRIU config file (read through CRIU_CONFIG_FILE, since
// LXC has no option for what ctrfs needs) and returns its path.
func criuConfig(lines ...string) (string, error) {
	return writeTemp("ctrfs-criu-*.conf", strings.Join(lines, "\n")+"\n", 0o600)
}

func writeTemp(pattern, content string, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// ArchiveRootfsMain is `ctrfs archive-rootfs ROOTFS ARCHIVE [STATE]`, which
// CRIU's post-dump hook runs during a stateful snapshot. With the
// listed-incremental STATE of an earlier archive it archives what changed
// since, leaving STATE as it is (archiveRootfsChanges).
func ArchiveRootfsMain(args []string) int {
	if len(args) != 2 && len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs archive-rootfs ROOTFS ARCHIVE [STATE]")
		return 2
	}
	var err error
	if len(args) == 3 {
		err = archiveRootfsChanges(args[0], args[1], args[2])
	} else {
		err = archiveRootfs(args[0], args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// restoreOptions are the arguments of the restore verbs: DIR, then
// `stream` if the daemon serves the images there (images.ServeImages),
// `lazy-pages` if CRIU's lazy-pages daemon listens there for the memory
// (lazyrestore.go serves it from DIR itself, lazyrestore_remote.go from
// the source's page server), and `mntns-compat` for CRIU's older mount
// engine (see restoremode.go).
type restoreOptions struct {
	dir    string
	stream bool
	lazy   bool
	compat bool
}

func parseRestoreArgs(verb string, args []string) (restoreOptions, error) {
	if len(args) == 0 {
		return restoreOptions{}, fmt.Errorf("%s takes the image directory, then `stream`, `lazy-pages` and `mntns-compat` as needed", verb)
	}
	o := restoreOptions{dir: args[0]}
	for _, a := range args[1:] {
		switch a {
		case "stream":
			o.stream = true
		case restoreLazy:
			o.lazy = true
		case modeCompat:
			o.compat = true
		default:
			return o, fmt.Errorf("%s: unknown argument %q", verb, a)
		}
	}
	return o, nil
}

// restoreContainer restores from CRIU images, with the options that LXC
// has none for in a config file that CRIU reads from CRIU_CONFIG_FILE: the
// mount engine, streaming, the hook that recreates recorded cgroups, and
// the container's own options.
func restoreContainer(c *lxc.Container, lxcpath string, o restoreOptions) error {
	lines := []string{criuVerbosity}
	if o.compat {
		lines = append(lines, "mntns-compat-mode")
	}
	if o.stream {
		lines = append(lines, "stream")
	}
	if o.lazy {
		lines = append(lines, restoreLazy)
	}
	if cgroups := filepath.Join(o.dir, cgroupsFile); fileExists(cgroups) {
		hook, err := actionScript(cgroupsHook, map[string]string{"CTRFS_CGROUPS": cgroups})
		if err != nil {
			return err
		}
		defer os.Remove(hook)
		lines = append(lines, "action-script "+hook)
	}
	own, err := readCriuOptions(lxcpath, c.Name(), "restore")
	if err != nil {
		return err
	}
	conf, err := criuConfig(append(lines, own...)...)
	if err != nil {
		return err
	}
	defer os.Remove(conf)
	if err := os.Setenv("CRIU_CONFIG_FILE", conf); err != nil {
		return err
	}
	if err := c.Restore(lxc.RestoreOptions{Directory: o.dir}); err != nil {
		return err
	}
	if !c.Wait(lxc.RUNNING, 30*time.Second) {
		return fmt.Errorf("not running 30s after restore")
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// announce sends a gratuitous ARP for each of the container's IPv4
// addresses, so that bridges and switches learn where its MAC address is
// now: after a migration, or after the source takes a container back from
// a target whose copy had already appeared on the network. The host's own
// static BusyBox sends it from inside the container's network namespace:
// the container's rootfs need not have an arping (a Debian one has not).
func announce(c *lxc.Container) error {
	addrs, err := c.IPv4Addresses()
	if err != nil {
		return err
	}
	pid := c.InitPid()
	if pid <= 0 {
		return fmt.Errorf("%s is not running", c.Name())
	}
	var errs []string
	for _, addr := range addrs {
		cmd := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", pid),
			busyboxPath, "arping", "-U", "-c", "1", "-I", "eth0", addr)
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v: %s", addr, err, strings.TrimSpace(string(out))))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("arping %s", strings.Join(errs, "; "))
	}
	return nil
}

// freezeLimit bounds a freeze: LXC waits for the freezer without a limit,
// and a task in uninterruptible sleep (BusyBox nc in vfork() again) can
// keep a container FREEZING for good.
const freezeLimit = 10 * time.Second

// freezeWithin freezes the container, or thaws it and fails if it is not
// frozen within d.
//
// With the cgroup v1 freezer it writes FROZEN and polls freezer.state
// itself: LXC's own freeze looks again only once a second, which cost a
// migration's handover a whole second whenever the tasks took a moment to
// freeze. LXC's freeze then only records the state (its monitor keeps it;
// it is not read back from the cgroup), finding the tasks frozen at once.
// Elsewhere (cgroup2) LXC's call waits on cgroup.events, but it cannot be
// cancelled; it runs in a goroutine, and the helper process it runs in
// exits soon after, which ends it.
func freezeWithin(c *lxc.Container, d time.Duration) error {
	if c.SetCgroupItem("freezer.state", "FROZEN") == nil {
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if st := c.CgroupItem("freezer.state"); len(st) > 0 && strings.TrimSpace(st[0]) == "FROZEN" {
				if err := c.Freeze(); err != nil && !errors.Is(err, lxc.ErrAlreadyFrozen) {
					c.SetCgroupItem("freezer.state", "THAWED")
					return err
				}
				return nil
			}
		}
		stuck := unfrozenTasks(c.CgroupItem("tasks"))
		c.SetCgroupItem("freezer.state", "THAWED")
		return fmt.Errorf("%s did not freeze within %s; not frozen: %s", c.Name(), d, stuck)
	}
	done := make(chan error, 1)
	go func() { done <- c.Freeze() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
	}
	// c is locked by the call under way; thaw through another handle.
	other, err := lxc.NewContainer(c.Name(), c.ConfigPath())
	if err == nil {
		other.Unfreeze()
		other.Release()
	}
	return fmt.Errorf("%s did not freeze within %s (a task in uninterruptible sleep?)", c.Name(), d)
}

// unfrozenTasks describes the tasks of a freezer cgroup that are not in
// the freezer's trap: pid, command, state and where they wait.
func unfrozenTasks(pids []string) string {
	var out []string
	for _, pid := range pids {
		pid = strings.TrimSpace(pid)
		wchan, _ := os.ReadFile("/proc/" + pid + "/wchan")
		if w := string(wchan); strings.Contains(w, "refrigerator") || strings.Contains(w, "freezer") {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		state := "?"
		if stat, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
				state = string(stat[i+2])
			}
		}
		out = append(out, fmt.Sprintf("%s (%s) %s in %s", pid, strings.TrimSpace(string(comm)), state, wchan))
		if len(out) == 8 {
			break
		}
	}
	if len(out) == 0 {
		return "none found"
	}
	return strings.Join(out, ", ")
}
