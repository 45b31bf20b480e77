package idmap

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func files(t *testing.T, uid, gid string) Files {
	dir := t.TempDir()
	f := Files{UID: filepath.Join(dir, "subuid"), GID: filepath.Join(dir, "subgid")}
	must(t, os.WriteFile(f.UID, []byte(uid), 0o644))
	must(t, os.WriteFile(f.GID, []byte(gid), 0o644))
	return f
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Root gets the default range once, where it overlaps nothing, and the
// map starts there.
func TestEnsureRootAddsTheDefaultRangeOnce(t *testing.T) {
	f := files(t, "", "alice:100000:65536") // no newline at the end
	f.EnsureRoot(quiet)
	f.EnsureRoot(quiet)
	b, _ := os.ReadFile(f.GID)
	if string(b) != "alice:100000:65536\nroot:1000000:1000000000\n" {
		t.Fatalf("subgid is %q", b)
	}
	m, err := f.Root()
	if err != nil || m != (Map{UID: 1000000, GID: 1000000}) {
		t.Fatalf("Root = %v, %v", m, err)
	}
}

// Where the default range would be another user's, nothing is added and
// Root says which file lacks a range; a range too small is refused.
func TestRootRangeMissingOrTooSmall(t *testing.T) {
	f := files(t, "bob:1500000:65536\n", "root:300000:65536\n")
	f.EnsureRoot(quiet)
	if b, _ := os.ReadFile(f.UID); string(b) != "bob:1500000:65536\n" {
		t.Fatalf("an overlapping range was added: %q", b)
	}
	if _, err := f.Root(); err == nil || !strings.Contains(err.Error(), f.UID) || !strings.Contains(err.Error(), "has none") {
		t.Fatalf("Root without a range: %v", err)
	}
	f = files(t, "root:300000:1000\n", "root:300000:65536\n")
	if _, err := f.Root(); err == nil || !strings.Contains(err.Error(), f.UID) || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("Root with 1000 ids: %v", err)
	}
	f = files(t, "0:300000:65536\n", "root:400000:65536\n")
	if m, err := f.Root(); err != nil || m != (Map{UID: 300000, GID: 400000}) {
		t.Fatalf("Root = %v, %v", m, err)
	}
}

func TestFromConfig(t *testing.T) {
	m := Map{UID: 1000000, GID: 1000000}
	got, ok, err := FromConfig([]byte("lxc.uts.name = a\n" + m.ConfigLines()))
	if !ok || err != nil || got != m {
		t.Fatalf("FromConfig = %v %v %v", got, ok, err)
	}
	if _, ok, err := FromConfig([]byte("lxc.uts.name = a\n")); ok || err != nil {
		t.Fatalf("a privileged config: %v %v", ok, err)
	}
	if _, _, err := FromConfig([]byte("lxc.idmap = u 0 100000 1000\nlxc.idmap = g 0 100000 65536\n")); err == nil {
		t.Fatal("a map of 1000 ids was read")
	}
}

// Root's ranges, as a host tells its peers, and whether they hold a map.
func TestRootRangesHold(t *testing.T) {
	f := files(t, "alice:100000:65536\nroot:1000000:1000000000\nroot:200000:65536\n", "root:1000000:65535\n")
	rs, err := f.RootRanges()
	must(t, err)
	if got := rs.String(); got != "u 1000000:1000000000 200000:65536, g 1000000:65535" {
		t.Fatalf("ranges: %q", got)
	}
	if err := rs.Holds(Map{UID: 200000, GID: 1000000}); err == nil || !strings.Contains(err.Error(), "gids 1000000-1065535") || strings.Contains(err.Error(), "uids") {
		t.Errorf("a gid range one short: %v", err)
	}
	rs.GID = []Range{{1000000, 1000000000}}
	for _, m := range []Map{{1000000, 1000000}, {200000, 1000065536}, {1000000000 + 1000000 - Size, 1000000}} {
		if err := rs.Holds(m); err != nil {
			t.Errorf("%v: %v", m, err)
		}
	}
	if err := rs.Holds(Map{UID: 100000, GID: 1000000}); err == nil || !strings.Contains(err.Error(), "uids 100000-165535") {
		t.Errorf("another user's range: %v", err)
	}
	none, err := Files{UID: "/nonexistent/subuid", GID: "/nonexistent/subgid"}.RootRanges()
	must(t, err)
	if none.String() != "u none, g none" || none.Holds(Map{UID: 1000000, GID: 1000000}) == nil {
		t.Errorf("no files: %v", none)
	}
}
