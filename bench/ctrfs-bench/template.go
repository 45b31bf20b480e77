package main

// --template debian: the bench's containers are made from ctrfs's debian
// template (Debian 12 with systemd) through the top-level ctl, instead of
// the default busybox one. memhog runs there as a systemd service, so that
// every check of the other parts holds as it is; systemd, sshd, nginx and
// the counter service are the rest of the container's state.
//
// The raw side drives the same container with lxc-checkpoint on its LXC
// path, as for busybox, with what a raw restore of a systemd container
// needs and no more (ENVIRONMENT.md, "Real systemd containers"): CRIU's
// default mount engine (the busybox template's compat mode fails on the
// services' private mount namespaces) and an action script that recreates,
// before CRIU restores the tasks, the empty cgroups systemd watches. That
// script is ctrfs's own `make-cgroups` verb, fed with the cgroups recorded
// (lxchelper.RecordCgroups) before each raw dump, outside the timed span.

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ctrfs/internal/tree"
	"ctrfs/ops/lxchelper"
)

const (
	templateBusybox = "busybox"
	templateDebian  = "debian"
)

// memhogUnit is the systemd unit that runs memhog in a debian container.
const memhogUnit = "ctrfs-bench-memhog.service"

// createContainer makes the bench's container through the top-level ctl,
// its kind named (kindOf): what mkdir makes is the daemon's default, which
// issue 21 is to flip, and the figures must say which kind they are of.
func (b *bench) createContainer() error {
	cmd := "create " + b.cfg.name + " --" + kindOf(b.cfg)
	if b.cfg.template != templateBusybox {
		cmd += " --template " + b.cfg.template
	}
	return tree.Ctl(b.cfg.mount, cmd)
}

// memhogInstalled says whether the rootfs runs memhog: only a container
// that an earlier bench made (--keep) is reused.
func (b *bench) memhogInstalled(rootfs string) bool {
	if b.cfg.template == templateDebian {
		_, err := os.Stat(filepath.Join(rootfs, "etc/systemd/system", memhogUnit))
		return err == nil
	}
	inittab, _ := os.ReadFile(filepath.Join(rootfs, "etc/inittab"))
	return strings.Contains(string(inittab), "/bin/memhog")
}

// installMemhog copies memhog into the rootfs and has init run it,
// respawned: a line of busybox's inittab, or an enabled systemd unit.
func (b *bench) installMemhog() error {
	cfg := b.cfg
	bin := "/bin/memhog"
	if cfg.template == templateDebian {
		bin = "/usr/local/sbin/memhog"
	}
	if err := installFile(cfg.memhog, filepath.Join(b.rootfs, bin), 0o755); err != nil {
		return fmt.Errorf("copy memhog into the container: %w", err)
	}
	args := fmt.Sprintf("--mib %d --dir /var/lib/memhog --interval %s --rewrite-percent %g --rewrite-pattern %s",
		cfg.mib, cfg.interval, cfg.rewritePct, cfg.rewritePattern)
	if cfg.memhogRate > 0 {
		args += fmt.Sprintf(" --rewrite-rate %g", cfg.memhogRate)
	}
	if cfg.template == templateBusybox {
		return setInittabLine(filepath.Join(b.rootfs, "etc/inittab"), bin, "::respawn:"+bin+" "+args)
	}
	unit := "# ctrfs-bench's workload (bench/memhog); it runs as root like the\n" +
		"# template's counter, see /etc/ctrfs-template/README.\n" +
		"[Unit]\nDescription=ctrfs-bench memhog: dirtied memory that a checkpoint must save\n\n" +
		"[Service]\nExecStart=" + bin + " " + args + "\nRestart=always\n\n" +
		"[Install]\nWantedBy=multi-user.target\n"
	dir := filepath.Join(b.rootfs, "etc/systemd/system")
	if err := os.WriteFile(filepath.Join(dir, memhogUnit), []byte(unit), 0o644); err != nil {
		return err
	}
	link := filepath.Join(dir, "multi-user.target.wants", memhogUnit)
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Symlink("/etc/systemd/system/"+memhogUnit, link)
}

// waitBooted waits, for a debian container, until systemd has finished
// booting with no failed unit and the counter service answers: a
// checkpoint taken while units are still starting measures the boot.
func (b *bench) waitBooted() error {
	if b.cfg.template != templateDebian {
		return nil
	}
	t0 := time.Now()
	deadline := t0.Add(3 * time.Minute)
	var state string
	for {
		out, _ := exec.Command("lxc-attach", "-P", b.cfg.lxcpath, "-n", b.cfg.name, "--",
			"timeout", "120", "systemctl", "is-system-running", "--wait").CombinedOutput()
		state = strings.TrimSpace(string(out))
		// Right after the start systemd may not take connections yet.
		if !strings.Contains(state, "Failed to connect to bus") || time.Now().After(deadline) {
			break
		}
		if err := b.checkInterrupt(); err != nil {
			return err
		}
		time.Sleep(time.Second)
	}
	if state != "running" {
		failed, _ := exec.Command("lxc-attach", "-P", b.cfg.lxcpath, "-n", b.cfg.name, "--",
			"systemctl", "--failed", "--no-legend").CombinedOutput()
		return fmt.Errorf("systemd in %s is %q, not running; failed units:\n%s", b.cfg.name, state, failed)
	}
	ip := tree.Info(b.ctr)["ipv4"]
	if ip == "" {
		return fmt.Errorf("%s has no ipv4 in its info", b.ctr)
	}
	probe := startProber(net.JoinHostPort(ip, "8080"), 100*time.Millisecond)
	defer probe.close()
	a, err := probe.waitAnswer(time.Now(), time.Until(deadline)+time.Second)
	if err != nil {
		return fmt.Errorf("the counter service of %s: %w", b.cfg.name, err)
	}
	fmt.Printf("ctrfs-bench: systemd in %s running, counter at %d, %.1fs after memhog was ready\n",
		b.cfg.name, a.count, time.Since(t0).Seconds())
	return nil
}

// prepareRawRestore writes the CRIU config file of raw restores, and
// records what it needs from the running container: call it before each
// raw dump that is to be restored.
// busybox: mntns-compat-mode (CRIU's mount-v2 cannot restore the
// template's read-only bind mounts; CRIU accepts the option at restore
// only). debian: the cgroup action script.
func (b *bench) prepareRawRestore() error {
	if b.cfg.template == templateBusybox {
		return os.WriteFile(b.criuConf, []byte("mntns-compat-mode\n"), 0o644)
	}
	pid, err := strconv.Atoi(tree.Info(b.ctr)["pid"])
	if err != nil {
		return fmt.Errorf("%s: no pid in info: %w", b.ctr, err)
	}
	// Afresh each time: an earlier recording must not stand in for this one.
	dir := filepath.Join(b.work, b.cfg.name+"-cgroups")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	cgroups, err := lxchelper.RecordCgroups(pid, dir)
	if err != nil {
		return fmt.Errorf("record the cgroups of %s for the raw restore: %w", b.cfg.name, err)
	}
	if cgroups == "" {
		return os.WriteFile(b.criuConf, nil, 0o644)
	}
	if _, err := os.Stat(b.cfg.ctrfsBin); err != nil {
		return fmt.Errorf("--ctrfs %q (its make-cgroups verb is the raw restore's cgroup hook): %w", b.cfg.ctrfsBin, err)
	}
	hook := filepath.Join(b.work, b.cfg.name+".cgroups-hook")
	script := fmt.Sprintf("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = pre-restore ] || exit 0\nexec '%s' make-cgroups '%s'\n",
		b.cfg.ctrfsBin, cgroups)
	if err := os.WriteFile(hook, []byte(script), 0o700); err != nil {
		return err
	}
	return os.WriteFile(b.criuConf, []byte("action-script "+hook+"\n"), 0o644)
}
