package main

// What the bench reads and writes on the host, outside the mount: image
// directories, a container's rootfs and config, CRIU's logs, the tools'
// versions.

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// dirBytes sums the sizes of the regular files under dir that keep accepts
// (all of them when keep is nil).
func dirBytes(dir string, keep func(name string) bool) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || (keep != nil && !keep(d.Name())) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	return total, err
}

// rootfsOf reads lxc.rootfs.path from the container's config; a dir: path
// is used as is, anything else falls back to LXCPATH/NAME/rootfs.
func rootfsOf(lxcpath, name string) string {
	def := filepath.Join(lxcpath, name, "rootfs")
	data, err := os.ReadFile(filepath.Join(lxcpath, name, "config"))
	if err != nil {
		return def
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "lxc.rootfs.path" {
			continue
		}
		v = strings.TrimSpace(v)
		v = strings.TrimPrefix(v, "dir:")
		if strings.HasPrefix(v, "/") {
			return v
		}
	}
	return def
}

// installFile copies src to dst through a temporary file and a rename, so
// that a binary still mapped by an old process is replaced, not rewritten.
func installFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// setInittabLine replaces every line mentioning marker with line, or
// appends it.
func setInittabLine(path, marker, line string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.Contains(l, marker) {
			out = append(out, l)
		}
	}
	out = append(out, line)
	return os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644)
}

// logTail is the last lines of a CRIU log, formatted to follow a message.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "\n--- last lines of " + path + " ---\n" + strings.Join(lines, "\n")
}

// toolVersion is what `name --version` says: CRIU's "Version: X" line, or
// the first line (LXC prints the bare version).
func toolVersion(name string) string {
	out, err := exec.Command(name, "--version").Output()
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func kernel() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(data))
}
