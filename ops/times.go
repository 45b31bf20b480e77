package ops

import (
	"fmt"
	"os"
	"time"

	"ctrfs/ops/lxchelper"
	"ctrfs/ops/lxcpath"
)

// Times are when a container's files last changed, for the tree's mtimes.
// What the daemon did is remembered until it exits; after a restart the
// times fall back to the container's creation and its config's
// modification.
type Times struct {
	Created time.Time // creation
	Changed time.Time // the last operation (status, info, the directory)
	Config  time.Time // the config file's last modification
	Criu    time.Time // the CRIU options file's; creation if there is none
	Error   time.Time // `error` last changed
	Log     time.Time // `log` last replaced
}

// Times reports the container's times; a time not known is its creation.
func (f *Files) Times(name string) Times {
	var t Times
	path := f.containers.ConfigPath(name)
	if fi, err := os.Stat(path); err == nil {
		t.Created, t.Config = f.created.from(path, fi), fi.ModTime()
	}
	t.Criu = t.Created
	if fi, err := os.Stat(lxchelper.CriuOptionsPath(f.lxcPath, name)); err == nil {
		t.Criu = fi.ModTime()
	}
	r, _ := f.ledger.get(name)
	t.Changed, t.Error, t.Log = r.opAt, r.errAt, r.logAt
	t.Changed = latest(t.Created, t.Config, t.Changed)
	t.Error = latest(t.Created, t.Error)
	t.Log = latest(t.Created, t.Log)
	if t.Config.IsZero() {
		t.Config = t.Created
	}
	return t
}

// Changed is Times(name).Changed, the time of the container's directory,
// status and snapshots/, at the cost of one stat of its config (a stat of
// each directory on the way of a walk asks for it); false if there is no
// such container.
func (f *Files) Changed(name string) (time.Time, bool) {
	if ValidateName(name) != nil {
		return time.Time{}, false
	}
	path := f.containers.ConfigPath(name)
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, false
	}
	r, _ := f.ledger.get(name)
	opAt := r.opAt
	return latest(f.created.from(path, fi), fi.ModTime(), opAt), true
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// FileAttr is what a stat of a container's file shows.
type FileAttr struct {
	Size  int64
	Mtime time.Time
}

// ConfigAttr is the config's size and time (Times().Config) at the cost of
// one stat: a stat of the file must not read it.
func (f *Files) ConfigAttr(name string) (FileAttr, error) {
	fi, err := statConfig(f.containers, name)
	if err != nil {
		return FileAttr{}, err
	}
	return FileAttr{Size: fi.Size(), Mtime: fi.ModTime()}, nil
}

// CriuOptionsAttr is the `criu` file's size and time (Times().Criu): 0
// bytes at the container's creation if there is none.
func (f *Files) CriuOptionsAttr(name string) (FileAttr, error) {
	cfg, err := statConfig(f.containers, name)
	if err != nil {
		return FileAttr{}, err
	}
	if fi, err := os.Stat(lxchelper.CriuOptionsPath(f.lxcPath, name)); err == nil {
		return FileAttr{Size: fi.Size(), Mtime: fi.ModTime()}, nil
	}
	return FileAttr{Mtime: f.created.from(f.containers.ConfigPath(name), cfg)}, nil
}

// statConfig stats the config of a container, ErrNotFound if there is none.
func statConfig(containers *lxcpath.Containers, name string) (os.FileInfo, error) {
	if ValidateName(name) == nil {
		if fi, err := os.Stat(containers.ConfigPath(name)); err == nil {
			return fi, nil
		}
	}
	return nil, newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
}
