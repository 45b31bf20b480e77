package ops

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const otherUID = 65534 // nobody

// stagingManager is a Manager with just what staging needs, and what it
// logs.
func stagingManager(t *testing.T) (*Manager, *bytes.Buffer) {
	var log bytes.Buffer
	base := t.TempDir()
	m := &Manager{cfg: Config{StoreDir: filepath.Join(base, "store"), LXCPath: filepath.Join(base, "lxc")},
		log: slog.New(slog.NewTextHandler(&log, nil))}
	for _, d := range []string{m.cfg.StoreDir, m.cfg.LXCPath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(m.Close)
	return m, &log
}

// plant makes dir as another user would, with a dump in it.
func plant(t *testing.T, dir string) string {
	t.Helper()
	dump := filepath.Join(dir, "dump-c1-1")
	if err := os.MkdirAll(dump, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, p := range []string{dir, dump} {
		if err := os.Chown(p, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
	}
	return dump
}

func TestOwnDir(t *testing.T) {
	base := t.TempDir()
	own := filepath.Join(base, "own")
	os.Mkdir(own, 0o700)
	if err := ownDir(own); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o755)
	link := filepath.Join(base, "link")
	os.Symlink(own, link)
	other := filepath.Join(base, "other")
	os.Mkdir(other, 0o700)
	if err := os.Chown(other, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{open: "mode 0755", link: "symlink", other: "uid 65534"} {
		if err := ownDir(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ownDir(%s): %v, want %q", filepath.Base(dir), err, want)
		}
	}
}

// Every dump gets a fresh directory of its own in a root the daemon made;
// a directory planted at the old fixed path on /dev/shm is not used.
func TestStagingFresh(t *testing.T) {
	m, _ := stagingManager(t)
	legacy := filepath.Join(shm, m.memoryStagingName())
	plant(t, legacy)
	a, err := m.stagingDir("c1", "dump", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.stagingDir("c1", "dump", 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.streamDir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(a)
	if a == b || filepath.Dir(b) != root || filepath.Dir(r) != root {
		t.Fatalf("staging %s, %s and %s are not fresh directories of one root", a, b, r)
	}
	if !strings.HasPrefix(root, legacy+"-") {
		t.Fatalf("staging root %s, want a fresh one beside %s", root, legacy)
	}
	for _, d := range []string{root, a, b, r} {
		if err := ownDir(d); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(a)
	os.Remove(b)
	os.Remove(r)
	m.Close()
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("Close left %s: %v", root, err)
	}
}

// Staging planted by another user, or a symlink, at any path a daemon
// used or uses is neither read nor removed at start, and is logged.
func TestRecoverStagingIgnoresPlanted(t *testing.T) {
	m, log := stagingManager(t)
	name := m.memoryStagingName()
	planted := []string{
		plant(t, filepath.Join(shm, name)),
		plant(t, filepath.Join(shm, name+"-planted")),
		plant(t, m.diskStagingPath()),
	}
	target := t.TempDir() // the daemon's own, reached through a symlink
	os.Chmod(target, 0o700)
	os.Mkdir(filepath.Join(target, "dump-c1-2"), 0o700)
	link := filepath.Join(shm, name+"-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	planted = append(planted, filepath.Join(target, "dump-c1-2"))

	m.recoverStaging()
	for _, p := range planted {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was touched: %v", p, err)
		}
	}
	for _, root := range []string{filepath.Join(shm, name), filepath.Join(shm, name+"-planted"), m.diskStagingPath(), link} {
		if !strings.Contains(log.String(), root) {
			t.Errorf("log does not name %s:\n%s", root, log)
		}
	}
	// New dumps go elsewhere: not under the planted disk staging.
	if _, err := m.diskStaging(); err == nil {
		t.Fatal("a planted disk staging directory was accepted")
	}
	dir, err := m.stagingDir("c1", "dump", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if err := ownDir(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
}

// removeLater takes a finished dump out of recovery's sight at once (it
// must never become saved state again) and Close waits for the removal.
func TestRemoveLater(t *testing.T) {
	m, _ := stagingManager(t)
	dir, err := m.stagingDir("c1", "dump", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"inventory.img", "pstree.img", "stats-dump"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Dir(dir)
	m.removeLater(dir)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there under its name after removeLater: %v", dir, err)
	}
	if _, ok := stagedDumpOf(filepath.Base(filepath.Join(root, "removing-"+filepath.Base(dir)))); ok {
		t.Fatal("a directory being removed still reads as a staged dump")
	}
	m.Close()
	if entries, err := os.ReadDir(root); err == nil && len(entries) > 0 {
		t.Fatalf("Close left %v in %s", entries, root)
	}
}

// TestStagedOf: staging directories' names parse back into purpose and
// container; names with dashes too.
func TestStagedOf(t *testing.T) {
	for _, c := range []struct{ dir, purpose, name string }{
		{"dump-c1-123456", "dump", "c1"},
		{"snapshot-web-1-99", "snapshot", "web-1"},
		{"lazy-c1-7", "lazy", "c1"},
	} {
		purpose, name, ok := stagedOf(c.dir)
		if !ok || purpose != c.purpose || name != c.name {
			t.Errorf("stagedOf(%q) = %q, %q, %v", c.dir, purpose, name, ok)
		}
	}
	for _, dir := range []string{"r-123456", "dump", "dump--1"} {
		if _, _, ok := stagedOf(dir); ok {
			t.Errorf("stagedOf(%q) parsed", dir)
		}
	}
}
