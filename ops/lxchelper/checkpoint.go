package lxchelper

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	lxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"
)

// archiveHook is a CRIU action script that archives the rootfs after a dump
// while the processes are still frozen, so that the archive holds the files
// as the dumped processes last saw them: the whole tree, or with tar's
// incremental state of an archive made before, what changed since; or,
// a rootfs that is a btrfs subvolume, a read-only snapshot of it.
const archiveHook = `#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0
[ -z "$CTRFS_SUBVOLUME" ] || exec "$CTRFS_HELPER" snapshot-rootfs "$CTRFS_ROOTFS" "$CTRFS_SUBVOLUME"
exec "$CTRFS_HELPER" archive-rootfs "$CTRFS_ROOTFS" "$CTRFS_ARCHIVE" ${CTRFS_TAR_STATE:+"$CTRFS_TAR_STATE"}
`

// SubvolumeFlag is CheckpointRunning's word before a snapshot subvolume
// to make, where an archive would go.
const SubvolumeFlag = "--subvolume"

// freezeTimeout is CRIU's --timeout for freezing and seizing the tasks
// (10 s by default). A dump that cannot seize a task in time fails and is
// tried again (see ops/checkpoint.go, dumpStored), so a shorter timeout makes each failed
// attempt stall the container for less.
const freezeTimeout = "timeout 3"

// criuVerbosity makes CRIU's log (the `log` file) tell more than errors,
// which alone rarely say why. CRIU's --verbosity takes its level only
// as --verbosity=N: this line, "--verbosity 4" to it, is a bare -v, level
// 3 (errors, warnings, info). Level 4 (debug) writes far more (every
// watch, mount and page run); what that costs a dump is not measured, so
// it stays off, and a container's criu file asks for it with
// `verbosity=4` when a bug needs it.
const criuVerbosity = "verbosity 4"

// dumpRun is one CRIU dump of a container, as exec_criu words it.
type dumpRun struct {
	dir     string
	stop    bool   // kill the tasks after the dump (not for a pre-dump)
	preDump bool   // `criu pre-dump`: memory only, the tasks run on
	parent  string // the images of the pre-dump before, if any (--prev-images-dir)
}

func (d dumpRun) action() string {
	if d.preDump {
		return "pre-dump"
	}
	return "dump"
}

// checkpoint dumps the container into dir, and stops it or leaves it
// running; config are extra lines of CRIU configuration.
func checkpoint(c *lxc.Container, lxcpath, dir string, stop bool, config ...string) error {
	return dump(c, lxcpath, dumpRun{dir: dir, stop: stop}, config...)
}

// dump runs d through LXC (or without it where LXC cannot: criudump.go);
// config are extra lines of CRIU configuration. The container's own
// options (its criu file) come last, and its cgroups are recorded beside
// the images (see recordCgroups). LXC's migrate call (lxcMigrate) is its
// checkpoint with what checkpoint lacks: the pre-dump, and the parent
// images, which it passes as `--prev-images-dir DIR --track-mem`.
func dump(c *lxc.Container, lxcpath string, d dumpRun, config ...string) error {
	dir, stop := d.dir, d.stop
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
	if d.preDump || d.parent != "" {
		err = lxcMigrate(c.Name(), lxcpath, c.LogFile(), d.preDump, dir, d.parent, stop)
	} else {
		err = c.Checkpoint(lxc.CheckpointOptions{Directory: dir, Stop: stop})
	}
	if err != nil {
		// A lazy dump's tasks are kept stopped (ops/moves/lazydump.go), not
		// killed: the container does not end STOPPED then.
		killed := stop && !slices.Contains(config, "leave-stopped")
		if tried, derr := dumpWithoutLXC(c, c.LogFile(), d, killed); tried {
			return derr
		}
	}
	return err
}

// checkpointWithRootfs dumps the container's processes into dir and leaves
// them running; CRIU's post-dump hook archives the rootfs meanwhile, only
// what changed since the archive whose incremental state is given, if it is.
// With SubvolumeFlag and a path after rootfs, the hook snapshots the
// rootfs subvolume there instead.
func checkpointWithRootfs(c *lxc.Container, lxcpath, dir, rootfs, archive string, state ...string) error {
	env := map[string]string{"CTRFS_ROOTFS": rootfs, "CTRFS_ARCHIVE": archive, "CTRFS_TAR_STATE": "", "CTRFS_SUBVOLUME": ""}
	if archive == SubvolumeFlag && len(state) == 1 {
		env["CTRFS_SUBVOLUME"], archive = state[0], state[0]
	} else if len(state) > 0 {
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
