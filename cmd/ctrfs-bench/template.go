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
// script is ctrfs's own `make-cgroups` verb, fed with the cgroups the bench
// records before each raw dump, outside the timed span.

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	templateBusybox = "busybox"
	templateDebian  = "debian"
)

// memhogUnit is the systemd unit that runs memhog in a debian container.
const memhogUnit = "ctrfs-bench-memhog.service"

// createContainer makes the bench's container through the mount: mkdir
// for the default template, the top-level ctl's create for another.
func (b *bench) createContainer() error {
	if b.cfg.template == templateBusybox {
		return os.Mkdir(b.ctr, 0o755)
	}
	return writeCtl(filepath.Join(b.cfg.mount, "ctl"), "create "+b.cfg.name+" --template "+b.cfg.template,
		filepath.Join(b.cfg.mount, "error"))
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
	ip := b.info()["ipv4"]
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
	cgroups := filepath.Join(b.work, b.cfg.name+".cgroups")
	if err := b.recordCgroups(cgroups); err != nil {
		return fmt.Errorf("record the cgroups of %s for the raw restore: %w", b.cfg.name, err)
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

// recordCgroups writes, in the format of ctrfs's make-cgroups (lines
// `HIERARCHY PATH`, PATH relative to the container's cgroup), every cgroup
// directory below the container's own: LXC names it lxc.payload.NAME (with
// a suffix if taken), and the restore may get another suffix, so the paths
// are relative and make-cgroups finds the new one on CRIU's command line.
func (b *bench) recordCgroups(file string) error {
	pid := b.info()["pid"]
	own, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return fmt.Errorf("the container's init (pid %q): %w", pid, err)
	}
	mounts, err := cgroupMountDirs()
	if err != nil {
		return err
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(own)))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		id, path := parts[1], parts[2]
		if parts[0] == "0" && id == "" {
			id = "unified"
		}
		i := strings.Index(path, "/lxc.payload.")
		if i < 0 || mounts[id] == "" {
			continue
		}
		root := path
		if j := strings.IndexByte(path[i+1:], '/'); j >= 0 {
			root = path[:i+1+j]
		}
		base := filepath.Join(mounts[id], root)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a cgroup removed meanwhile
			}
			if d.IsDir() && p != base {
				rel, _ := filepath.Rel(base, p)
				lines = append(lines, id+" "+rel)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// cgroupMountDirs maps the hierarchies, named as /proc/PID/cgroup names
// them ("cpu,cpuacct", "name=systemd", "unified" for cgroup2), to where
// they are mounted.
func cgroupMountDirs() (map[string]string, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(m)
		if len(f) < 4 {
			continue
		}
		switch f[2] {
		case "cgroup2":
			out["unified"] = f[1]
		case "cgroup":
			opts := strings.Split(f[3], ",")
			for _, l := range strings.Split(string(self), "\n") {
				parts := strings.SplitN(l, ":", 3)
				if len(parts) != 3 || parts[1] == "" {
					continue
				}
				all := true
				for _, c := range strings.Split(parts[1], ",") {
					all = all && slices.Contains(opts, c)
				}
				if all {
					out[parts[1]] = f[1]
				}
			}
		}
	}
	return out, nil
}
