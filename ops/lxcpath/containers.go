// Package lxcpath is the containers of one LXC path as ctrfs's operations
// use them: which there are, their go-lxc handles and states, the checks
// of a state before an operation, the helper process that runs LXC and
// CRIU for them (ops/lxchelper), and stopping them. It knows nothing of
// operations' locks and records, of the image store, of checkpoints or
// of moves: ops and the packages beside this one build those on it.
package lxcpath

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/errkind"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/opctx"
	"ctrfs/ops/storage"
)

// ShutdownTimeout is how long a clean stop waits for init before killing.
const ShutdownTimeout = 10 * time.Second

// Containers are the containers of one LXC path.
type Containers struct {
	path    string
	runner  lxchelper.Runner
	states  stateHandles
	storage storage.Backend // of new containers' rootfs
}

// New is the containers of lxcPath, whose helper is the ctrfs binary at
// helperPath, writing its LXC logs into logDir and its scratch files into
// tempDir.
func New(lxcPath, helperPath, logDir, tempDir string) *Containers {
	return &Containers{path: lxcPath,
		runner: lxchelper.Runner{Path: helperPath, LXCPath: lxcPath, LogDir: logDir, TempDir: tempDir}}
}

// UseStorage makes new containers' rootfs with b (the default: plain
// directories). Set once, before any operation.
func (cs *Containers) UseStorage(b storage.Backend) { cs.storage = b }

// Storage is the backend of new containers' rootfs; a container's own
// is storage.KindOf its rootfs.
func (cs *Containers) Storage() storage.Backend { return cs.storage }

// Path is the LXC path.
func (cs *Containers) Path() string { return cs.path }

// ConfigPath is the container's LXC config file.
func (cs *Containers) ConfigPath(name string) string {
	return filepath.Join(cs.path, name, "config")
}

// List returns the containers of the LXC path, made by ctrfs or not.
func (cs *Containers) List() ([]string, error) {
	entries, err := os.ReadDir(cs.path)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "list "+cs.path, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() || ValidateName(e.Name()) != nil {
			continue // also skips ".NAME.creating" of a create under way
		}
		if _, err := os.Stat(cs.ConfigPath(e.Name())); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Exists says whether the container is defined.
func (cs *Containers) Exists(name string) bool {
	if ValidateName(name) != nil {
		return false
	}
	_, err := os.Stat(cs.ConfigPath(name))
	return err == nil
}

// Open opens the go-lxc handle of an existing container; the caller
// releases it.
func (cs *Containers) Open(name string) (*lxc.Container, error) {
	if !cs.Exists(name) {
		return nil, errkind.New(errkind.ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	c, err := lxc.NewContainer(name, cs.path)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "open container "+name, err)
	}
	return c, nil
}

// Status is RUNNING, STOPPED or FROZEN. LXC's passing states are reported as
// the state the container is still in, so scripts only ever see three words.
func (cs *Containers) Status(name string) (string, error) {
	if !cs.Exists(name) {
		return "", errkind.New(errkind.ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	st, err := cs.states.state(name, cs.path)
	if err != nil {
		return "", errkind.New(errkind.ErrFailed, "open container "+name, err)
	}
	return statusWord(st), nil
}

// Forget releases what is kept of a name that no container has any more.
func (cs *Containers) Forget(name string) { cs.states.forget(name) }

// StatusOf is Status of an open container.
func StatusOf(c *lxc.Container) string { return statusWord(c.State()) }

func statusWord(st lxc.State) string {
	switch st {
	case lxc.RUNNING, lxc.THAWED, lxc.FREEZING, lxc.STOPPING, lxc.ABORTING:
		return "RUNNING"
	case lxc.FROZEN:
		return "FROZEN"
	default:
		return "STOPPED"
	}
}

// RequireStatus fails with ErrBusy unless the container is in one of want.
func RequireStatus(c *lxc.Container, verb string, want ...string) (string, error) {
	st := StatusOf(c)
	for _, w := range want {
		if st == w {
			return st, nil
		}
	}
	return st, errkind.New(errkind.ErrBusy, fmt.Sprintf("cannot %s %s: it is %s", verb, c.Name(), st), nil)
}

// RequireStatus is RequireStatus for a container by name.
func (cs *Containers) RequireStatus(name, verb string, want ...string) error {
	c, err := cs.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	_, err = RequireStatus(c, verb, want...)
	return err
}

// MemoryUsage is the memory a container uses (0 if it does not exist).
func (cs *Containers) MemoryUsage(name string) (int64, error) {
	c, err := cs.Open(name)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	mem, err := c.MemoryUsage()
	if err != nil {
		return 0, errNoMemoryFigure
	}
	return int64(mem), nil
}

var errNoMemoryFigure = errors.New("no memory figure")

// ImagesSizeHint guesses the size of a container's CRIU images from its
// memory use, plus room for everything else CRIU writes.
func (cs *Containers) ImagesSizeHint(name string) int64 {
	const extra = 64 << 20
	mem, err := cs.MemoryUsage(name)
	if errors.Is(err, errNoMemoryFigure) {
		return 1 << 30 // unknown: only a roomy tmpfs will do
	}
	return mem + extra
}

// Helpers starts the helper processes (lxchelper) of these containers.
func (cs *Containers) Helpers() lxchelper.Runner { return cs.runner }

// RunHelper runs a helper verb for an operation (lxchelper.Runner.Run): the
// LXC log it wrote becomes the operation's `log`, and ctx's end stops it
// (everything it runs, LXC and CRIU, and exits: lxchelper/lifeline.go).
func (cs *Containers) RunHelper(ctx context.Context, oc *opctx.Op, verb lxchelper.Verb, name string, args ...string) error {
	log, ran, err := cs.runner.Run(ctx, verb, name, args...)
	if ran {
		oc.SetLog(log)
	}
	return err
}

// RunCRIUHelper is RunHelper for a verb whose CRIU works over work bytes
// of images: past lxchelper.CRIULimit(work) the helper is stopped, and the
// error is an *lxchelper.OverdueError.
func (cs *Containers) RunCRIUHelper(ctx context.Context, oc *opctx.Op, work int64, verb lxchelper.Verb, name string, args ...string) error {
	log, ran, err := cs.runner.RunCRIU(ctx, work, verb, name, args...)
	if ran {
		oc.SetLog(log)
	}
	return err
}

// RootfsOf is the directory of a container's rootfs: a plain directory or
// a btrfs subvolume (ops/storage); other LXC backends (a block device,
// an overlay) are not supported.
func RootfsOf(c *lxc.Container) (string, error) {
	items := c.ConfigItem("lxc.rootfs.path")
	path := ""
	if len(items) > 0 {
		path = strings.TrimSpace(items[0])
	}
	path = strings.TrimPrefix(strings.TrimPrefix(path, "dir:"), "btrfs:")
	if path == "" || !filepath.IsAbs(path) {
		return "", errkind.New(errkind.ErrUnsupported, fmt.Sprintf("%s: rootfs %q is not a directory that ctrfs can snapshot", c.Name(), path), nil)
	}
	return path, nil
}
