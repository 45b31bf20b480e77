package ops

import (
	"bytes"
	"context"
	"ctrfs/internal/testenv"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ctrfs/images/trust"
)

const otherUID = 65534 // nobody

// stagingManager is a Manager with just what staging needs, and what it
// logs.
func stagingManager(t *testing.T) (*Manager, *bytes.Buffer) {
	var log bytes.Buffer
	base := t.TempDir()
	m := newManager(Config{StoreDir: filepath.Join(base, "store"), LXCPath: filepath.Join(base, "lxc")},
		context.Background(), nil, slog.New(slog.NewTextHandler(&log, nil)), nil)
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

// Staging planted by another user, or a symlink, at any path a daemon
// used or uses is neither read nor removed at start, and is logged.
func TestRecoverStagingIgnoresPlanted(t *testing.T) {
	testenv.NeedRoot(t, "to plant directories of another user")
	m, log := stagingManager(t)
	name := m.staging.MemoryName()
	planted := []string{
		plant(t, filepath.Join("/dev/shm", name)),
		plant(t, filepath.Join("/dev/shm", name+"-planted")),
		plant(t, m.staging.DiskRoot()),
	}
	target := t.TempDir() // the daemon's own, reached through a symlink
	os.Chmod(target, 0o700)
	os.Mkdir(filepath.Join(target, "dump-c1-2"), 0o700)
	link := filepath.Join("/dev/shm", name+"-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	planted = append(planted, filepath.Join(target, "dump-c1-2"))

	m.saved.RecoverStaging(context.Background())
	for _, p := range planted {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was touched: %v", p, err)
		}
	}
	for _, root := range []string{filepath.Join("/dev/shm", name), filepath.Join("/dev/shm", name+"-planted"), m.staging.DiskRoot(), link} {
		if !strings.Contains(log.String(), root) {
			t.Errorf("log does not name %s:\n%s", root, log)
		}
	}
	// New dumps go elsewhere: not under the planted disk staging.
	dir, err := m.staging.Dir("c1", "dump", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if filepath.Dir(dir) == m.staging.DiskRoot() {
		t.Fatal("a planted disk staging directory was accepted")
	}
	if err := trust.PrivateDir(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
}
