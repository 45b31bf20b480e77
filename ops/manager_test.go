package ops

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// writeConfig puts a fake container config at lxcpath/name/config.
func writeConfig(t *testing.T, lxcpath, name, content string) {
	t.Helper()
	dir := filepath.Join(lxcpath, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// managerWith is a Manager of a fresh LXC path holding the named
// containers (a config each), enough for what needs no LXC.
func managerWith(t *testing.T, names ...string) *Manager {
	t.Helper()
	lxcpath := t.TempDir()
	for _, n := range names {
		writeConfig(t, lxcpath, n, "lxc.uts.name = "+n+"\n")
	}
	m := newManager(Config{LXCPath: lxcpath}, context.Background(), NewEventBus(),
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	t.Cleanup(m.events.Close)
	return m
}
