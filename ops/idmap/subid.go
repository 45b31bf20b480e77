package idmap

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Files are the files root's ranges come from: /etc/subuid and
// /etc/subgid on every host in use (tests point a daemon at others).
type Files struct{ UID, GID string }

// HostFiles are the host's own.
var HostFiles = Files{UID: "/etc/subuid", GID: "/etc/subgid"}

// The range the daemon gives root when it has none, as LXD does: a
// billion ids from 1000000, far above the ids of the host's users.
const (
	defaultStart = 1000000
	defaultCount = 1000000000
)

// entry is one line of a subordinate id file: NAME:START:COUNT.
type entry struct {
	name         string
	start, count uint64
}

func readEntries(path string) ([]entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var es []entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, ":")
		if len(p) != 3 {
			continue // not a range: shadow's tools skip it too
		}
		start, err1 := strconv.ParseUint(p[1], 10, 32)
		count, err2 := strconv.ParseUint(p[2], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		es = append(es, entry{p[0], start, count})
	}
	return es, sc.Err()
}

func isRoot(name string) bool { return name == "root" || name == "0" }

// rootBase is the start of root's first range in path, which must hold
// Size ids.
func rootBase(path string) (uint32, error) {
	es, err := readEntries(path)
	if err != nil {
		return 0, fmt.Errorf("unprivileged containers need a range for root in %s: %v", path, err)
	}
	for _, e := range es {
		if !isRoot(e.name) {
			continue
		}
		if e.count < Size || e.start+Size > 1<<32-1 {
			return 0, fmt.Errorf("root's range in %s (%d ids from %d) is too small: an unprivileged container needs %d (e.g. root:%d:%d)",
				path, e.count, e.start, Size, defaultStart, defaultCount)
		}
		return uint32(e.start), nil
	}
	return 0, fmt.Errorf("unprivileged containers need a range for root in %s and it has none: add one that overlaps no other entry (e.g. root:%d:%d)",
		path, defaultStart, defaultCount)
}

// Root is the map of this host's unprivileged containers: from the start
// of root's ranges.
func (f Files) Root() (Map, error) {
	uid, err := rootBase(f.UID)
	if err != nil {
		return Map{}, err
	}
	gid, err := rootBase(f.GID)
	if err != nil {
		return Map{}, err
	}
	return Map{UID: uid, GID: gid}, nil
}

// EnsureRoot gives root its default range in each file that has none,
// as LXD does at setup, but only where it overlaps no other entry (those
// ids would be another user's); it logs what it did or why not. A file
// left without a range makes only unprivileged creates fail (Root says
// why).
func (f Files) EnsureRoot(log *slog.Logger) {
	for _, path := range []string{f.UID, f.GID} {
		added, err := ensureRootIn(path)
		switch {
		case err != nil:
			log.Warn("root has no subordinate id range, and none was added: unprivileged containers cannot be created", "file", path, "err", err)
		case added:
			log.Info("gave root a subordinate id range for unprivileged containers", "file", path,
				"entry", fmt.Sprintf("root:%d:%d", defaultStart, defaultCount))
		}
	}
}

// ensureRootIn appends the default entry to path if root has none and it
// overlaps nothing, under an exclusive lock so that daemons starting
// together add it once.
func ensureRootIn(path string) (added bool, err error) {
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	defer fd.Close()
	if err := unix.Flock(int(fd.Fd()), unix.LOCK_EX); err != nil {
		return false, err
	}
	es, err := readEntries(path)
	if err != nil {
		return false, err
	}
	for _, e := range es {
		if isRoot(e.name) {
			return false, nil
		}
		if e.start < defaultStart+defaultCount && defaultStart < e.start+e.count {
			return false, fmt.Errorf("root:%d:%d would overlap %s:%d:%d", defaultStart, defaultCount, e.name, e.start, e.count)
		}
	}
	line := fmt.Sprintf("root:%d:%d\n", defaultStart, defaultCount)
	if st, err := fd.Stat(); err == nil && st.Size() > 0 && !endsInNewline(fd, st.Size()) {
		line = "\n" + line
	}
	if _, err := fd.WriteString(line); err != nil {
		return false, err
	}
	return true, nil
}

func endsInNewline(f *os.File, size int64) bool {
	b := make([]byte, 1)
	_, err := f.ReadAt(b, size-1)
	return err == nil && b[0] == '\n'
}
