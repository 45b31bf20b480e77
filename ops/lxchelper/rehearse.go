package lxchelper

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
)

// A restore rehearsal proves that this host can restore a checkpoint
// while the container it was taken from still exists, frozen (see
// ops/hold.go): the images are restored for real, into a throwaway
// identity, and the copy is killed at once.
//
// The identity is the same name under an LXC path of its own,
// LXCPATH/.rehearsal-NAME (List skips dot names), with the container's
// config and CRIU options, so that the restore is the one `start` would
// run, but with no bridge for its veths: it has the original's addresses,
// and must not answer for them. Its tasks never run: they are frozen
// before CRIU lets them go (see freezestate.go), and KillFrozen kills them
// without a thaw.

// rehearsalPrefix starts the name of a rehearsal's LXC path.
const rehearsalPrefix = ".rehearsal-"

// rehearseRestore restores the container's images as a throwaway copy
// and kills the copy; nil if the restore succeeded.
func rehearseRestore(c *lxc.Container, lxcpath string, o restoreOptions) error {
	path := filepath.Join(lxcpath, rehearsalPrefix+c.Name())
	removeRehearsal(path, c.Name())
	defer removeRehearsal(path, c.Name())
	if err := os.MkdirAll(filepath.Join(path, c.Name()), 0o700); err != nil {
		return err
	}
	config, err := os.ReadFile(filepath.Join(lxcpath, c.Name(), "config"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(path, c.Name(), "config"), unbridged(config), 0o600); err != nil {
		return err
	}
	if own, err := os.ReadFile(CriuOptionsPath(lxcpath, c.Name())); err == nil {
		if err := os.WriteFile(CriuOptionsPath(path, c.Name()), own, 0o600); err != nil {
			return err
		}
	}
	copy, err := lxc.NewContainer(c.Name(), path)
	if err != nil {
		return err
	}
	defer copy.Release()
	copy.SetLogFile(c.LogFile())
	copy.SetLogLevel(lxc.INFO)
	copy.WantCloseAllFds(true)
	o.rehearsal = rehearsalCgroup(c.Name(), path)
	undo, err := withoutFileLocks()
	if err != nil {
		return err
	}
	defer undo()
	if err := restoreContainer(copy, path, o); err != nil {
		return err
	}
	return killCopy(copy)
}

// killCopy kills a rehearsal's copy frozen (KillFrozen), thawing its
// cgroup2 cgroup, where LXC does not look, after the SIGKILLs.
func killCopy(copy *lxc.Container) error {
	if pid := copy.InitPid(); pid > 0 {
		SignalNamespace(pid, syscall.SIGKILL)
	}
	thawRehearsal(rehearsalCgroup(copy.Name(), copy.ConfigPath()))
	return KillFrozen(copy, 30*time.Second)
}

// rehearsalCgroup is the cgroup2 cgroup a rehearsal's copy of name,
// whose LXC path is path, is restored into (cgroup2root.go): without it,
// the held container's own, frozen. Cgroups are the host's, and two
// daemons (two LXC paths) may rehearse containers of one name at once:
// the name ends in a number hashed from the copy's LXC path, as LXC's
// own lxc.payload.NAME-N end in a number when the name is taken.
func rehearsalCgroup(name, path string) string {
	h := fnv.New32a()
	h.Write([]byte(path))
	return fmt.Sprintf("lxc.rehearsal.%s-%d", name, h.Sum32())
}

// removeRehearsalCgroups removes what CRIU made of a rehearsal's cgroup
// in every hierarchy, once its tasks are gone: LXC knows nothing of it.
func removeRehearsalCgroups(name, path string) {
	mounts, err := cgroupMounts()
	if err != nil {
		return
	}
	for _, m := range mounts {
		removeCgroupTree(filepath.Join(m.dir, rehearsalCgroup(name, path)))
	}
}

// removeCgroupTree removes a cgroup directory and its children, deepest
// first (a cgroup's files cannot be removed, only its directory).
func removeCgroupTree(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir)
}

// unbridged is config without the bridge of any network: the copy's veths
// are made, but attached to nothing.
func unbridged(config []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(config, []byte("\n")) {
		key, _, _ := strings.Cut(string(line), "=")
		key = strings.TrimSpace(key)
		if strings.HasPrefix(key, "lxc.net.") && strings.HasSuffix(key, ".link") {
			continue
		}
		out = append(out, line)
	}
	return bytes.Join(out, []byte("\n"))
}

// removeRehearsal kills a rehearsal's copy of name if it runs and removes
// its LXC path.
func removeRehearsal(path, name string) {
	if c, err := lxc.NewContainer(name, path); err == nil {
		if c.Running() {
			if err := killCopy(c); err != nil {
				fmt.Fprintf(os.Stderr, "cannot kill the rehearsal copy of %s: %v\n", name, err)
			}
		}
		c.Release()
	}
	removeRehearsalCgroups(name, path)
	os.RemoveAll(path)
}

// RemoveRehearsals removes what rehearsals left in lxcpath: a daemon
// killed during one leaves its copy, frozen.
func RemoveRehearsals(lxcpath string) {
	paths, _ := filepath.Glob(filepath.Join(lxcpath, rehearsalPrefix+"*"))
	for _, path := range paths {
		removeRehearsal(path, strings.TrimPrefix(filepath.Base(path), rehearsalPrefix))
	}
}

// withoutFileLocks puts first on PATH, for the rehearsal's restore, a
// criu that drops LXC's --file-locks (LXC passes it on every command
// line, where a config file cannot undo it), and returns what undoes
// that. The copy's files are the held original's, whose tasks still hold
// their locks: restoring a lock is a blocking F_SETLKW (criu/file-lock.c),
// and a MariaDB rehearsal waited on its own original's lock until CRIU's
// deadline killed it. The rehearsal proves all but the locks, which the
// real restore takes once the original is gone.
func withoutFileLocks() (undo func(), err error) {
	return criuOnPath("a restore rehearsal's criu, without --file-locks (ops/lxchelper/rehearse.go)",
		"for a do\n\tshift\n\t[ \"$a\" = --file-locks ] || set -- \"$@\" \"$a\"\ndone\n")
}
