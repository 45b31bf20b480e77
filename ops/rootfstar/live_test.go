package rootfstar

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeTar puts a tar first on PATH that writes an empty archive and exits
// with status code, as GNU tar does when files change under it (1) or on
// a real failure (2).
func fakeTar(t *testing.T, code string) {
	t.Helper()
	bin := t.TempDir()
	script := "#!/bin/sh\nfor a; do case $a in --listed-incremental=*) printf 'GNU tar-1.34-2\\n1700000000\\0000\\000' > \"${a#*=}\";; esac; done\necho 'tar: ./f: file changed as we read it' >&2\nexit " + code + "\n"
	if err := os.WriteFile(filepath.Join(bin, "tar"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

// A whole-tree archive made while the container runs tolerates files
// changing under it (the frozen incremental catches up); an incremental
// one, made while frozen, and any other failure do not.
func TestArchiveLiveToleratesChangedFiles(t *testing.T) {
	rootfs, dir := t.TempDir(), t.TempDir()
	fakeTar(t, "1")
	state := filepath.Join(dir, "level0")
	if err := ArchiveSince(rootfs, filepath.Join(dir, "a.tar"), state); err != nil {
		t.Fatalf("a level-0 archive failed on files changed while it ran: %v", err)
	}
	if err := ArchiveSince(rootfs, filepath.Join(dir, "b.tar"), state); err == nil || !tarFilesChanged(err) {
		t.Fatalf("an incremental archive (made while frozen) passed files changing under it: %v", err)
	}
	fakeTar(t, "2")
	if err := ArchiveSince(rootfs, filepath.Join(dir, "c.tar"), filepath.Join(dir, "fresh")); err == nil {
		t.Fatal("a level-0 archive passed tar's fatal error")
	}
}

// A stateless snapshot of a running container tolerates files changing
// under tar, not tar's fatal errors.
func TestArchiveRunningToleratesChangedFiles(t *testing.T) {
	rootfs, dir := t.TempDir(), t.TempDir()
	fakeTar(t, "1")
	if err := ArchiveRunning(rootfs, filepath.Join(dir, "a.tar")); err != nil {
		t.Fatalf("an archive of a running container failed on files changed while it ran: %v", err)
	}
	if err := Archive(rootfs, filepath.Join(dir, "b.tar")); err == nil {
		t.Fatal("Archive passed files changing under it")
	}
	fakeTar(t, "2")
	if err := ArchiveRunning(rootfs, filepath.Join(dir, "c.tar")); err == nil {
		t.Fatal("ArchiveRunning passed tar's fatal error")
	}
}
