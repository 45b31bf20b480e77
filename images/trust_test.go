package images

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ctrfs/images/trust"
	"ctrfs/internal/testenv"
)

// nobody plants what the tests below must not trust.
const nobody = 65534

// TestPlantedManifests: a manifest that another user made, or one in a
// directory of theirs, or a symlink, is damaged: it is never loaded, and
// nothing is saved into such a directory.
func TestPlantedManifests(t *testing.T) {
	testenv.NeedRoot(t, "to make files of another user")
	s := newStore(t)
	importSave(t, s, dumpDir, "state/c1")
	importSave(t, s, dumpDir, "state/c2")
	importSave(t, s, dumpDir, "snapshots/c3/s1")
	os.Chown(s.manifestPath("state/c1"), nobody, nobody)
	elsewhere := filepath.Join(t.TempDir(), "c2.json")
	if err := os.Rename(s.manifestPath("state/c2"), elsewhere); err != nil {
		t.Fatal(err)
	}
	os.Symlink(elsewhere, s.manifestPath("state/c2"))
	os.Chown(filepath.Dir(s.manifestPath("snapshots/c3/s1")), nobody, nobody)

	for key, want := range map[string]string{
		"state/c1":        "belongs to uid 65534",
		"state/c2":        "is a symlink",
		"snapshots/c3/s1": "snapshots/c3 belongs to uid 65534",
	} {
		if de := wantDamaged(t, s, key); !strings.Contains(de.Reason, "not ctrfs's own: ") || !strings.Contains(de.Reason, want) {
			t.Errorf("%s: %q; want the reason %q", key, de.Reason, want)
		}
	}
	m, _, err := s.ImportDir(context.Background(), dumpDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(m)
	err = s.Save("snapshots/c3/s2", m)
	if !errors.Is(err, trust.ErrUntrusted) || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("Save into a directory of another user: %v; want a refusal", err)
	}
	if _, err := os.Lstat(s.manifestPath("snapshots/c3/s2")); err == nil {
		t.Fatal("Save wrote into a directory of another user")
	}
}

// TestOpenRefusesPlantedLayout: a store whose fixed directories another
// user made is not opened.
func TestOpenRefusesPlantedLayout(t *testing.T) {
	testenv.NeedRoot(t, "to make files of another user")
	for _, sub := range []string{"manifests", "chunks/7f", "damaged"} {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chown(filepath.Join(dir, sub), nobody, nobody)
		if _, err := Open(dir); !errors.Is(err, trust.ErrUntrusted) || !strings.Contains(err.Error(), sub+" belongs to uid 65534") {
			t.Errorf("Open with %s planted: %v", sub, err)
		}
	}
}
