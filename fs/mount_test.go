package fs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"ctrfs/internal/testenv"
	"ctrfs/ops"
)

// These tests mount the tree in this process, as go-fuse's own tests do,
// over fakes of ops and cluster (fakes_test.go): what they check is fs's
// own part, from the system call to the Manager or Cluster call and back
// (lines forwarded, errors mapped to errno, `error` files, modes,
// listings), without LXC or CRIU.

// mountTree mounts the tree over m and cl in a directory of the test's
// and unmounts it when the test ends.
func mountTree(t *testing.T, m *fakeManager, cl *fakeCluster) string {
	t.Helper()
	testenv.NeedRoot(t, "to mount FUSE directly")
	testenv.NeedDevice(t, "/dev/fuse", "to mount FUSE")
	dir := t.TempDir()
	server, err := gofs.Mount(dir, NewRoot(m, m, cl), Options())
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		m.events.Close() // ends the root's subscription (keptnames.go)
		if err := server.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

// names lists a directory of the mount.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestMountListsTheTree(t *testing.T) {
	m := newFakeManager("c1", "c2")
	dir := mountTree(t, m, &fakeCluster{})

	want := map[string][]string{
		"":                  {"README", "containers", "ctl", "error", "events", "host", "hosts", "templates"},
		"containers":        {"c1", "c2", "hosts"},
		"hosts":             {"here"},
		"hosts/here":        {"c1", "c2"},
		"containers/c1":     {"bugreport", "config", "criu", "ctl", "error", "info", "log", "snapshots", "status"},
		"containers/c1/..":  {"c1", "c2", "hosts"},
		"containers/hosts/": {"here"},
	}
	for sub, w := range want {
		got := names(t, filepath.Join(dir, sub))
		slices.Sort(got)
		if !slices.Equal(got, w) {
			t.Errorf("ls %s: %q, want %q", sub, got, w)
		}
	}
	if got := read(t, filepath.Join(dir, "host")); got != "here\n" {
		t.Errorf("host: %q", got)
	}
	if got := read(t, filepath.Join(dir, "containers/c2/status")); got != "STOPPED\n" {
		t.Errorf("status: %q", got)
	}

	// state/ is there only while there is saved state; a container
	// made behind the tree's back shows at once (nothing is cached).
	m.set("c1", func(c *fakeContainer) { c.hasState = true })
	if got := names(t, filepath.Join(dir, "containers/c1")); !slices.Contains(got, "state") {
		t.Errorf("with saved state: %q, want state/", got)
	}
	if err := m.Create("c3"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "containers/c3/ctl")); err != nil {
		t.Errorf("a container made meanwhile: %v", err)
	}
}

// TestMountModes: docs/ctrfs.5.md's PERMISSIONS, file by file.
func TestMountModes(t *testing.T) {
	dir := mountTree(t, newFakeManager("c1"), &fakeCluster{})
	for path, want := range map[string]os.FileMode{
		"README": 0o444, "host": 0o444, "events": 0o444, "error": 0o444,
		"ctl":                     0o644,
		"containers":              os.ModeDir | 0o755,
		"containers/c1":           os.ModeDir | 0o755,
		"containers/c1/ctl":       0o644,
		"containers/c1/status":    0o444,
		"containers/c1/info":      0o444,
		"containers/c1/error":     0o444,
		"containers/c1/config":    0o600,
		"containers/c1/criu":      0o600,
		"containers/c1/log":       0o400,
		"containers/c1/bugreport": 0o400,
		"containers/c1/snapshots": os.ModeDir | 0o755,
	} {
		fi, err := os.Lstat(filepath.Join(dir, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if got := fi.Mode(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "containers/hosts")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("containers/hosts is not a link: %v, %v", fi, err)
	}
}

// TestMountCtlForwardsLines: a write to a ctl reaches the router as it was
// written, with the container's name for a container's ctl; fs parses
// nothing. Reading a ctl shows its commands.
func TestMountCtlForwardsLines(t *testing.T) {
	cl := &fakeCluster{}
	dir := mountTree(t, newFakeManager("c1"), cl)
	writes := []struct{ path, line string }{
		{"containers/c1/ctl", "stop-stateful\n"},
		{"hosts/here/c1/ctl", "move tollana --post-copy\n"},
		{"containers/c1/ctl", "not a command"},
		{"ctl", "create c2 --template busybox\n"},
		{"ctl", "evacuate\n"},
	}
	for _, w := range writes {
		if err := os.WriteFile(filepath.Join(dir, w.path), []byte(w.line), 0); err != nil {
			t.Errorf("%s < %q: %v", w.path, w.line, err)
		}
	}
	want := []string{"c1: stop-stateful\n", "c1: move tollana --post-copy\n", "c1: not a command",
		": create c2 --template busybox\n", ": evacuate\n"}
	if got := cl.got(); !slices.Equal(got, want) {
		t.Errorf("dispatched %q, want %q", got, want)
	}
	if got := read(t, filepath.Join(dir, "containers/c1/ctl")); got != ops.CtlHelp {
		t.Errorf("containers/c1/ctl reads %q", got)
	}
	if got := read(t, filepath.Join(dir, "ctl")); got != ops.HostCtlHelp {
		t.Errorf("ctl reads %q", got)
	}
}

// TestMountCtlErrno: the router's error becomes the write's errno, by
// docs/ctrfs.5.md's table, for a container's ctl and the top-level one.
func TestMountCtlErrno(t *testing.T) {
	cl := &fakeCluster{}
	dir := mountTree(t, newFakeManager("c1"), cl)
	for _, tt := range specErrno {
		cl.failWith(ops.NewError(tt.kind, "failed as "+tt.name))
		for _, path := range []string{"containers/c1/ctl", "ctl"} {
			err := os.WriteFile(filepath.Join(dir, path), []byte("start\n"), 0)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s, %s: %v, want %v", tt.name, path, err, tt.want)
			}
		}
	}
	cl.failWith(errors.New("an error of no kind"))
	if err := os.WriteFile(filepath.Join(dir, "ctl"), []byte("evacuate\n"), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("an error of no kind: %v, want EIO", err)
	}
}

// TestMountErrorFiles: the top-level `error` is the last top-level
// command's (or mkdir's) error, empty once one succeeds; a container's is
// what ops recorded.
func TestMountErrorFiles(t *testing.T) {
	m := newFakeManager("c1")
	cl := &fakeCluster{}
	dir := mountTree(t, m, cl)
	top := filepath.Join(dir, "error")
	if got := read(t, top); got != "" {
		t.Errorf("error before any command: %q", got)
	}
	cl.failWith(ops.NewError(ops.ErrUnreachable, "host tollana is dead"))
	if err := os.WriteFile(filepath.Join(dir, "ctl"), []byte("evacuate tollana\n"), 0); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("evacuate: %v", err)
	}
	if got := read(t, top); got != "host tollana is dead\n" {
		t.Errorf("error after a failed command: %q", got)
	}
	cl.failWith(nil)
	if err := os.WriteFile(filepath.Join(dir, "ctl"), []byte("evacuate\n"), 0); err != nil {
		t.Error(err)
	}
	if got := read(t, top); got != "" {
		t.Errorf("error after a command that succeeded: %q", got)
	}
	// mkdir is create: its failure is the top-level error too.
	m.mu.Lock()
	m.createErr = ops.NewError(ops.ErrUnsupported, "no template here")
	m.mu.Unlock()
	if err := os.Mkdir(filepath.Join(dir, "containers/c2"), 0o755); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("mkdir: %v, want EOPNOTSUPP", err)
	}
	if got := read(t, top); got != "no template here\n" {
		t.Errorf("error after a failed mkdir: %q", got)
	}

	if got := read(t, filepath.Join(dir, "containers/c1/error")); got != "" {
		t.Errorf("a container's error before any failure: %q", got)
	}
	m.set("c1", func(c *fakeContainer) { c.lastErr = "cannot start c1: it is RUNNING" })
	if got := read(t, filepath.Join(dir, "containers/c1/error")); got != "cannot start c1: it is RUNNING\n" {
		t.Errorf("a container's error: %q", got)
	}
}

// TestMountCtlBusyAtOpen: while an operation is under way, opening a
// container's ctl for writing fails with EBUSY and nothing is dispatched;
// reading it still works.
func TestMountCtlBusyAtOpen(t *testing.T) {
	m := newFakeManager("c1")
	cl := &fakeCluster{}
	dir := mountTree(t, m, cl)
	m.set("c1", func(c *fakeContainer) { c.idle = ops.NewError(ops.ErrBusy, "c1 is stopping") })
	ctl := filepath.Join(dir, "containers/c1/ctl")
	if err := os.WriteFile(ctl, []byte("start\n"), 0); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("write while busy: %v, want EBUSY", err)
	}
	if got := cl.got(); len(got) != 0 {
		t.Errorf("dispatched while busy: %q", got)
	}
	if got := read(t, ctl); got != ops.CtlHelp {
		t.Errorf("reading ctl while busy: %q", got)
	}
}
