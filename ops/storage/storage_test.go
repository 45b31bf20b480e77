package storage

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"ctrfs/internal/testenv"
)

func TestChooseOnDirectoryHost(t *testing.T) {
	dir := t.TempDir()
	if onBtrfs(dir) {
		t.Skip("the temporary directory is on btrfs")
	}
	for want, kind := range map[string]Kind{"auto": Dir, "": Dir, "dir": Dir} {
		b, err := Choose(dir, want)
		if err != nil || b.Kind() != kind {
			t.Errorf("Choose(%q) = %v, %v; want %s", want, b.Kind(), err, kind)
		}
	}
	if _, err := Choose(dir, "btrfs"); err == nil {
		t.Error("Choose(btrfs) off btrfs: no error")
	}
	if _, err := Choose(dir, "zfs"); err == nil {
		t.Error("Choose(zfs): no error")
	}
	var b Backend
	root := filepath.Join(dir, "rootfs")
	if err := b.MakeRootfs(root); err != nil || KindOf(root) != Dir {
		t.Fatalf("MakeRootfs on a directory host: %v, kind %s", err, KindOf(root))
	}
	if err := RemoveTree(root); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTree(root); err != nil {
		t.Fatalf("RemoveTree of nothing: %v", err)
	}
}

// The life of a rootfs on btrfs: a subvolume, a read-only snapshot that
// no write reaches, a writable snapshot of that, and removal of each,
// with a subvolume nested in the rootfs (as a container's systemd makes).
func TestBtrfsSubvolumes(t *testing.T) {
	mnt := testenv.Btrfs(t, t.TempDir(), 256<<20)
	b, err := Choose(mnt, "auto")
	if err != nil || b.Kind() != Btrfs {
		t.Fatalf("Choose(auto) on btrfs = %s, %v", b.Kind(), err)
	}
	root := filepath.Join(mnt, "rootfs")
	if err := b.MakeRootfs(root); err != nil {
		t.Fatal(err)
	}
	if KindOf(root) != Btrfs {
		t.Fatalf("the new rootfs is no subvolume")
	}
	if fi, _ := os.Stat(root); fi.Mode().Perm() != 0o755 {
		t.Errorf("rootfs mode %v, want 0755", fi.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(mnt, "snap")
	if err := Snapshot(root, snap, true); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "f"), []byte("two"), 0o644)
	if got, _ := os.ReadFile(filepath.Join(snap, "f")); string(got) != "one" {
		t.Errorf("the snapshot reads %q, want one", got)
	}
	err = os.WriteFile(filepath.Join(snap, "g"), nil, 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into a read-only snapshot: %v, want EROFS", err)
	}
	back := filepath.Join(mnt, "back")
	if err := Snapshot(snap, back, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(back, "g"), nil, 0o644); err != nil {
		t.Errorf("write into a writable snapshot: %v", err)
	}
	nested := filepath.Join(back, "var", "lib", "machines")
	os.MkdirAll(filepath.Dir(nested), 0o755)
	if err := run("subvolume", "create", nested); err != nil {
		t.Fatal(err)
	}
	// A container's directory being made or moved away: its rootfs
	// and a snapshot in it.
	ctr := filepath.Join(mnt, "c1")
	os.MkdirAll(filepath.Join(ctr, "ctrfs-snapshots"), 0o700)
	if err := b.MakeRootfs(filepath.Join(ctr, "rootfs")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctr, "rootfs", "f"), nil, 0o644)
	if err := Snapshot(filepath.Join(ctr, "rootfs"), filepath.Join(ctr, "ctrfs-snapshots", "s1"), true); err != nil {
		t.Fatal(err)
	}
	if err := RemoveSubvolumes(ctr, 2); err != nil {
		t.Fatal(err)
	}
	if IsSubvolume(filepath.Join(ctr, "rootfs")) || IsSubvolume(filepath.Join(ctr, "ctrfs-snapshots", "s1")) {
		t.Error("RemoveSubvolumes left a subvolume")
	}
	if err := b.MakeRootfs(filepath.Join(ctr, "rootfs")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctr, "rootfs", "f"), nil, 0o644)
	for _, p := range []string{snap, back, root, ctr, filepath.Join(mnt, "missing")} {
		if err := RemoveTree(p); err != nil {
			t.Errorf("RemoveTree(%s): %v", p, err)
		}
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there", p)
		}
	}
}
