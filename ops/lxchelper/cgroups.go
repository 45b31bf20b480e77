package lxchelper

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Why record the container's cgroups: CRIU recreates only the cgroups
// that hold a task, and systemd keeps watching the cgroup.events of units'
// cgroups that hold none, so restoring a systemd container failed on the
// first of those it could not open. The dump records every cgroup
// directory under the container's own cgroup in CgroupsFile, beside CRIU's
// images (it travels with them: saved state, stateful snapshots, moves),
// and a CRIU action script recreates them at pre-restore, under the
// cgroups that LXC made for the restored container.

// CgroupsFile holds lines `HIERARCHY PATH`: HIERARCHY is a cgroup v1
// hierarchy's controllers as /proc/PID/cgroup names them ("cpu,cpuacct",
// "name=systemd"), or "unified" for cgroup2; PATH is relative to the
// container's cgroup in that hierarchy.
const CgroupsFile = "ctrfs-cgroups"

const unifiedHierarchy = "unified"

// cgroupMount is one mounted cgroup hierarchy of this host.
type cgroupMount struct {
	id          string   // as in CgroupsFile
	controllers []string // v1 only
	dir         string
}

// cgroupMounts lists this mount namespace's cgroup hierarchies that are
// mounted at their root, named as /proc/self/cgroup names them.
func cgroupMounts() ([]cgroupMount, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 3 || a[3] != "/" {
			continue
		}
		m := cgroupMount{dir: UnescapeMountPath(a[4])}
		switch b[0] {
		case "cgroup2":
			m.id = unifiedHierarchy
		case "cgroup":
			opts := strings.Split(b[2], ",")
			for id := range procCgroups(self) {
				ctrls := strings.Split(id, ",")
				all := id != unifiedHierarchy
				for _, c := range ctrls {
					all = all && contains(opts, c)
				}
				if all {
					m.id, m.controllers = id, ctrls
				}
			}
		}
		if m.id != "" && !seen[m.id] {
			seen[m.id] = true
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// UnescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func UnescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// procCgroups parses a /proc/PID/cgroup as read: hierarchy -> path.
func procCgroups(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		id := parts[1]
		if parts[0] == "0" && id == "" {
			id = unifiedHierarchy
		}
		out[id] = parts[2]
	}
	return out
}

// containerCgroups finds the container's own cgroup in each hierarchy: the
// root of its cgroup namespace. Its init may sit lower (systemd moves
// itself to init.scope), so it is the host's path of init less the path
// init has inside the namespace.
func containerCgroups(pid int) (map[string]string, error) {
	host, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	inside, err := readInCgroupNamespace(pid)
	if err != nil {
		return nil, err
	}
	hostPaths, nsPaths := procCgroups(host), procCgroups(inside)
	out := map[string]string{}
	for id, p := range hostPaths {
		root := p
		if q := nsPaths[id]; q != "/" && strings.HasSuffix(p, q) {
			root = strings.TrimSuffix(p, q)
		}
		out[id] = root
	}
	return out, nil
}

// readInCgroupNamespace reads /proc/PID/cgroup as the container sees it:
// the kernel shows the paths relative to the reader's cgroup namespace. The
// thread that joins the namespace is never used again (it ends with its
// goroutine, still locked).
func readInCgroupNamespace(pid int) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/cgroup", pid))
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWCGROUP); err != nil {
			ch <- result{nil, fmt.Errorf("join cgroup namespace: %w", err)}
			return
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		ch <- result{data, err}
	}()
	r := <-ch
	return r.data, r.err
}

// RecordCgroups is recordCgroups for tools that drive LXC and CRIU
// themselves (ctrfs-bench's raw restores, with `ctrfs make-cgroups` as
// their action script); it returns the file's path, "" if none was
// written.
func RecordCgroups(pid int, dir string) (string, error) {
	if err := recordCgroups(pid, dir); err != nil {
		return "", err
	}
	if path := filepath.Join(dir, CgroupsFile); fileExists(path) {
		return path, nil
	}
	return "", nil
}

// mountsAndRoots are this host's cgroup hierarchies (cgroupMounts) and the
// cgroups of the container whose init is pid (containerCgroups).
func mountsAndRoots(pid int) ([]cgroupMount, map[string]string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, nil, err
	}
	roots, err := containerCgroups(pid)
	return mounts, roots, err
}

// recordCgroups writes CgroupsFile into dir for the container whose init
// is pid. Nothing is written if there is nothing below its cgroups.
func recordCgroups(pid int, dir string) error {
	mounts, roots, err := mountsAndRoots(pid)
	if err != nil {
		return err
	}
	var lines []string
	for _, m := range mounts {
		root, ok := roots[m.id]
		if !ok {
			continue
		}
		base := filepath.Join(m.dir, root)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // a cgroup removed meanwhile
				}
				return err
			}
			if d.IsDir() && p != base {
				rel, _ := filepath.Rel(base, p)
				lines = append(lines, m.id+" "+rel)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(lines) == 0 {
		return nil
	}
	sort.Strings(lines)
	return os.WriteFile(filepath.Join(dir, CgroupsFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// cgroupsHook is the CRIU action script that recreates the recorded
// cgroups before CRIU restores the tasks into them.
const cgroupsHook = `#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] || exit 0
exec "$CTRFS_HELPER" make-cgroups "$CTRFS_CGROUPS"
`

// MakeCgroupsMain is `ctrfs make-cgroups FILE`, which cgroupsHook runs: it
// makes the cgroups recorded in FILE under the restored container's
// cgroups, which it reads from the command line of the CRIU that runs it
// (LXC passes them as --cgroup-root CONTROLLERS:PATH).
func MakeCgroupsMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs make-cgroups FILE")
		return 2
	}
	if err := makeCgroups(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs make-cgroups:", err)
		return 1
	}
	return 0
}

func makeCgroups(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	roots, err := criuCgroupRoots()
	if root := os.Getenv(cgroup2RootEnv); root != "" {
		// cgroup2's, from the restore's own config (cgroup2root.go).
		roots, err = append([]cgroupRoot{{[]string{""}, root}}, roots...), nil
	}
	if err != nil {
		return err
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	bases := restoredCgroupBases(mounts, roots)
	var missing []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		id, rel, ok := strings.Cut(sc.Text(), " ")
		if !ok || rel == "" || !filepath.IsLocal(rel) {
			continue
		}
		base, ok := bases[id]
		if !ok {
			if !contains(missing, id) {
				missing = append(missing, id)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Join(base, rel), 0o755); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		// Another host's layout (cgroup v1 hierarchies that this one has
		// not): the tasks' own cgroups are CRIU's business.
		fmt.Fprintf(os.Stderr, "ctrfs make-cgroups: no hierarchy here for %s\n", strings.Join(missing, ", "))
	}
	return sc.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cgroupRoot is one --cgroup-root CONTROLLERS:PATH of CRIU's command line.
type cgroupRoot struct {
	controllers []string
	path        string
}

// criuCgroupRoots reads --cgroup-root from the nearest ancestor that has
// it: CRIU, which runs its action scripts through a shell.
func criuCgroupRoots() ([]cgroupRoot, error) {
	pid := os.Getppid()
	for i := 0; i < 8 && pid > 1; i++ {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return nil, err
		}
		args := strings.Split(string(cmdline), "\x00")
		var roots []cgroupRoot
		for j := 0; j+1 < len(args); j++ {
			if args[j] == "--cgroup-root" {
				ctrls, path, ok := strings.Cut(args[j+1], ":")
				if ok {
					roots = append(roots, cgroupRoot{strings.Split(ctrls, ","), path})
				}
			}
		}
		if len(roots) > 0 {
			return roots, nil
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return nil, err
		}
		pid = 0
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "PPid:"); ok {
				pid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	return nil, errors.New("no CRIU with --cgroup-root among the parent processes")
}

// restoredCgroupBases maps each hierarchy to the directory of the restored
// container's cgroup. A v1 hierarchy is the root that names one of its
// controllers; cgroup2 is the root whose controllers no v1 hierarchy has.
func restoredCgroupBases(mounts []cgroupMount, roots []cgroupRoot) map[string]string {
	v1 := map[string]bool{}
	for _, m := range mounts {
		for _, c := range m.controllers {
			v1[c] = true
		}
	}
	out := map[string]string{}
	for _, m := range mounts {
		for _, r := range roots {
			match := false
			if m.id == unifiedHierarchy {
				match = true
				for _, c := range r.controllers {
					match = match && !v1[c]
				}
			} else {
				for _, c := range r.controllers {
					match = match || contains(m.controllers, c)
				}
			}
			if match {
				out[m.id] = filepath.Join(m.dir, r.path)
				break
			}
		}
	}
	return out
}
