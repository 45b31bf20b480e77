package ops

import (
	"errors"
	"os"
	"testing"
	"time"

	"ctrfs/ops/lxchelper"
)

// A stat of config or criu shows what reading them and Times would: the
// size of the content, the time of its last change (criu: creation when
// there is none), and ENOENT for no container.
func TestFileAttrsAgreeWithContentAndTimes(t *testing.T) {
	m := managerWith(t, "c1")
	check := func(what string, attr func(string) (FileAttr, error), read func(string) ([]byte, error), mtime time.Time) {
		t.Helper()
		a, err := attr("c1")
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		data, err := read("c1")
		if err != nil {
			t.Fatal(err)
		}
		if a.Size != int64(len(data)) || !a.Mtime.Equal(mtime) {
			t.Fatalf("%s: %+v; want %d bytes at %v", what, a, len(data), mtime)
		}
	}
	check("config", m.Files().ConfigAttr, m.Files().Config, m.Files().Times("c1").Config)
	check("criu (none)", m.Files().CriuOptionsAttr, m.Files().CriuOptions, m.Files().Times("c1").Criu)
	if err := os.WriteFile(lxchelper.CriuOptionsPath(m.cfg.LXCPath, "c1"), []byte("tcp-established\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("criu", m.Files().CriuOptionsAttr, m.Files().CriuOptions, m.Files().Times("c1").Criu)
	for _, attr := range []func(string) (FileAttr, error){m.Files().ConfigAttr, m.Files().CriuOptionsAttr} {
		if _, err := attr("c2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("no container: %v; want not found", err)
		}
	}
}
