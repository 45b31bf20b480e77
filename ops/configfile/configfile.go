// Package configfile reads and edits the files that ctrfs keeps as root
// beside its containers: an LXC config a line at a time, by key (the lines
// ctrfs sets: paths, the hostname, its own comments), and any such file
// written whole (WriteAtomic), so that a crash leaves the old file or the
// new one and no one but root can read it. It knows nothing of what the
// keys mean.
package configfile

import (
	"os"
	"strings"
)

// SetLine sets key to value in an LXC config: its first line is
// replaced and any later one dropped, or the line is added at the end.
func SetLine(config []byte, key, value string) []byte {
	line := key + " = " + value
	var out []string
	found := false
	if text := strings.TrimSuffix(string(config), "\n"); text != "" {
		for _, l := range strings.Split(text, "\n") {
			if Key(l) == key {
				if found {
					continue
				}
				l, found = line, true
			}
			out = append(out, l)
		}
	}
	if !found {
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// Key is the key a config line sets (`lxc.uts.name` of `lxc.uts.name = c1`),
// or "" if it sets none.
func Key(line string) string {
	k, _, ok := strings.Cut(line, "=")
	if !ok {
		return ""
	}
	return strings.TrimSpace(k)
}

// Line is the first line of config that sets key.
func Line(config []byte, key string) (string, bool) {
	for _, line := range strings.Split(string(config), "\n") {
		if Key(line) == key {
			return line, true
		}
	}
	return "", false
}

// WriteAtomic replaces path, so that a crash leaves the old file or the
// new one, never half of one.
func WriteAtomic(path string, data []byte) error {
	tmp := path + ".ctrfs-new"
	os.Remove(tmp) // a leftover keeps its mode; the new file must be 0600
	// Root's alone: what it writes (configs, CRIU options, journals) may
	// hold secrets, and the LXC path is readable by every user.
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// Copy copies the file src to dst, made with mode: a config or CRIU
// options file that goes into a snapshot or a move.
func Copy(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}
