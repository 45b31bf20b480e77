package main

// The container a part measures, as the bench's daemon shows it under
// containers/: made through the mount with memhog installed (setup), its
// workload checked after every restore (checkMemhog), destroyed at the end.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ctrfs/internal/tree"
)

// statusTimeout bounds a wait for a container's status. The commands and
// tools return once the operation is done, so the first read normally
// answers; the time spent waiting counts, the same for both sides.
const statusTimeout = 30 * time.Second

// bench is one run of the benchmark against one container.
type bench struct {
	cfg      *config
	ctr      string // MOUNT/containers/NAME
	rootfs   string
	work     string // temporary files: CRIU config, command logs
	criuConf string
	// memhog's pid in the container, and the checksum its memory must
	// have: the one in `ready`, then the one after the last rewrite, or
	// the one a restored snapshot was taken with.
	readyPid   string
	readySum   string
	interrupts chan os.Signal
	snaps      map[string]bool // snapshots this run took and has not deleted
	probe      *prober         // the counter's, while snapshots are timed (debian)
}

func newBench(cfg *config, work string, interrupts chan os.Signal) *bench {
	return &bench{cfg: cfg, ctr: filepath.Join(cfg.mount, "containers", cfg.name), work: work,
		criuConf: filepath.Join(work, "criu-restore.conf"), interrupts: interrupts, snaps: map[string]bool{}}
}

// checkInterrupt fails once ^C or SIGTERM has arrived.
func (b *bench) checkInterrupt() error {
	select {
	case sig := <-b.interrupts:
		b.interrupts <- sig
		return fmt.Errorf("interrupted (%s)", sig)
	default:
		return nil
	}
}

// setup creates the container through the mount, installs memhog as a
// respawned service of its init, starts it and waits until memhog has
// dirtied its memory. created says whether there is a container to destroy.
func (b *bench) setup() (created bool, err error) {
	cfg := b.cfg
	if err := b.createContainer(); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("create %s: %w%s", b.ctr, err, tree.ErrorSuffix(b.ctr))
		}
		// Reuse only a container that an earlier bench made (--keep):
		// never rewrite or destroy somebody else's.
		if !b.memhogInstalled(rootfsOf(cfg.lxcpath, cfg.name)) {
			return false, fmt.Errorf("%s exists and is not a benchmark container: pick another --name", b.ctr)
		}
		if err := b.checkKind(); err != nil {
			return false, err
		}
		fmt.Printf("ctrfs-bench: reusing %s from an earlier run\n", b.ctr)
		if st, _ := tree.Status(b.ctr); st != "STOPPED" || tree.Info(b.ctr)["stateful"] == "yes" {
			if err := tree.Ctl(b.ctr, "stop"); err != nil {
				return true, err
			}
		}
	}
	b.rootfs = rootfsOf(cfg.lxcpath, cfg.name)
	if _, err := os.Stat(filepath.Join(b.rootfs, "etc")); err != nil {
		return true, fmt.Errorf("the container's rootfs is not at %s (is --lxcpath the daemon's?): %w", b.rootfs, err)
	}
	if err := b.installMemhog(); err != nil {
		return true, err
	}
	if err := os.RemoveAll(b.memhogDir()); err != nil {
		return true, err
	}
	if cfg.ballastMiB > 0 {
		if err := writeBallast(b.rootfs, cfg.ballastMiB); err != nil {
			return true, fmt.Errorf("ballast: %w", err)
		}
	}

	fmt.Printf("ctrfs-bench: starting %s on %s and waiting for memhog to fill %d MiB\n", cfg.name, cfg.mount, cfg.mib)
	if err := tree.Ctl(b.ctr, "start"); err != nil {
		return true, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		kv := tree.ReadKV(filepath.Join(b.memhogDir(), "ready"))
		if kv["sum"] != "" {
			b.readyPid, b.readySum = kv["pid"], kv["sum"]
			fmt.Printf("ctrfs-bench: memhog ready (pid %s in the container, checksum %s, filled in %ss)\n",
				kv["pid"], kv["sum"], kv["fill-seconds"])
			break
		}
		if time.Now().After(deadline) {
			st, _ := tree.Status(b.ctr)
			return true, fmt.Errorf("memhog did not report ready within 2 minutes (container %s)", st)
		}
		if err := b.checkInterrupt(); err != nil {
			return true, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := b.waitBooted(); err != nil {
		return true, err
	}
	// One full re-checksum before the first dump: the workload is steady.
	if _, err := b.checkMemhog(0); err != nil {
		return true, fmt.Errorf("before the first checkpoint: %w", err)
	}
	return true, nil
}

// checkMemhog waits for memhog to rewrite its sum file past seq, and checks
// that it is the same process with the same memory as when it was ready:
// every block holds what memhog last wrote there (bad-blocks 0) and, unless
// it rewrites its memory steadily, the checksum is the expected one.
func (b *bench) checkMemhog(seq int) (string, error) {
	deadline := time.Now().Add(3*b.cfg.interval + 15*time.Second)
	for {
		kv := tree.ReadKV(filepath.Join(b.memhogDir(), "sum"))
		if n, err := strconv.Atoi(kv["seq"]); err == nil && n > seq {
			if kv["pid"] != b.readyPid {
				return "", fmt.Errorf("memhog is a new process (pid %s, was %s): the restored one died and init respawned it", kv["pid"], b.readyPid)
			}
			if kv["bad-blocks"] != "0" {
				return "", fmt.Errorf("memhog's memory is damaged: %s blocks of 64 KiB differ from what it wrote there (sum file %v)", kv["bad-blocks"], kv)
			}
			if b.cfg.memhogRate == 0 && kv["sum"] != b.readySum {
				return "", fmt.Errorf("memhog's memory changed: checksum %s, was %s", kv["sum"], b.readySum)
			}
			return kv["sum"], nil
		}
		if time.Now().After(deadline) {
			st, _ := tree.Status(b.ctr)
			return "", fmt.Errorf("memhog did not re-checksum its memory within %s (container %s, last sum file %v)",
				3*b.cfg.interval+15*time.Second, st, kv)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastSeq is memhog's last written sequence number; read while the
// container is stopped, anything larger proves a live process.
func (b *bench) lastSeq() int {
	n, _ := strconv.Atoi(tree.ReadKV(filepath.Join(b.memhogDir(), "sum"))["seq"])
	return n
}

func (b *bench) memhogDir() string { return filepath.Join(b.rootfs, "var/lib/memhog") }

// destroy stops and removes the container, through the mount when it can.
func (b *bench) destroy() {
	st, err := tree.Status(b.ctr)
	if err != nil {
		return
	}
	if st != "STOPPED" || tree.Info(b.ctr)["stateful"] == "yes" {
		if err := tree.Ctl(b.ctr, "stop"); err != nil {
			fmt.Fprintln(os.Stderr, "ctrfs-bench: cleanup:", err, "- killing it with lxc-stop")
			b.tool("cleanup-stop", nil, "lxc-stop", "-P", b.cfg.lxcpath, "-n", b.cfg.name, "-k")
		}
	}
	if err := os.Remove(b.ctr); err != nil {
		fmt.Fprintf(os.Stderr, "ctrfs-bench: cleanup: rmdir %s: %v%s\n", b.ctr, err, tree.ErrorSuffix(b.ctr))
	}
}

// ctlUntil writes cmd to the container's ctl, waits until its status is
// want and returns how long both took: the time of a command as its user
// sees it.
func (b *bench) ctlUntil(cmd, want string) (time.Duration, error) {
	t0 := time.Now()
	if err := tree.Ctl(b.ctr, cmd); err != nil {
		return 0, err
	}
	if err := tree.WaitStatus(b.ctr, want, statusTimeout); err != nil {
		return 0, fmt.Errorf("after %s: %w", cmd, err)
	}
	return time.Since(t0), nil
}

// lxcCheckpoint runs lxc-checkpoint on the container with its images in
// dir and flags added (-s, -r, none for a dump that leaves it running),
// through tool: the raw side of the parts, ctrfs left out.
func (b *bench) lxcCheckpoint(logName string, env []string, dir string, flags ...string) error {
	args := append([]string{"-P", b.cfg.lxcpath, "-n", b.cfg.name, "-D", dir}, flags...)
	return b.tool(logName, env, "lxc-checkpoint", args...)
}

// tool runs a command with its output in a log file, never a pipe: a
// restored container's monitor inherits the restoring process's
// descriptors and outlives it, so a pipe would never see EOF.
func (b *bench) tool(logName string, env []string, name string, args ...string) error {
	logPath := filepath.Join(b.work, logName+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(logPath)
		if msg := strings.TrimSpace(string(data)); msg != "" {
			return fmt.Errorf("%v\n--- %s %s output ---\n%s", err, name, strings.Join(args, " "), msg)
		}
		return err
	}
	return nil
}
