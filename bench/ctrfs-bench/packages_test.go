package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"ctrfs/internal/debpkg"
)

// writeArchive writes a rootfs archive as the template cache holds one
// ("./"-prefixed names), of files (name -> content; "->target" makes a
// symlink).
func writeArchive(t *testing.T, files [][2]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "debian.tar.zst")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, err := zstd.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for _, nf := range files {
		h := &tar.Header{Name: "./" + nf[0], Mode: 0o644}
		if target, ok := strings.CutPrefix(nf[1], "->"); ok {
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(nf[1]))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(nf[1])); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []interface{ Close() error }{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// The files debpkg.Dir keys a directory by come out of the archive as
// they are in a container's rootfs: the status byte for byte, and
// os-release through its symlink, so that the suite is read.
func TestExtractKeyFiles(t *testing.T) {
	status := "Package: base-files\nStatus: install ok installed\n\n"
	archive := writeArchive(t, [][2]string{
		{"etc/os-release", "->../usr/lib/os-release"},
		{"usr/lib/os-release", "ID=debian\nVERSION_CODENAME=bookworm\n"},
		{"var/lib/dpkg/status", status},
		{"var/lib/dpkg/status-old", "stale"},
	})
	dir := t.TempDir()
	if err := extractKeyFiles(archive, dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "var/lib/dpkg/status")); string(got) != status {
		t.Errorf("status is %q, want %q", got, status)
	}
	if got := debpkg.OSReleaseValue(filepath.Join(dir, "etc/os-release"), "VERSION_CODENAME"); got != "bookworm" {
		t.Errorf("VERSION_CODENAME through the symlink is %q, want bookworm", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "var/lib/dpkg/status-old")); err == nil {
		t.Error("status-old extracted too")
	}
}

// An archive without a dpkg status is refused, saying so, rather than
// keying a directory by an empty status.
func TestExtractKeyFilesMissing(t *testing.T) {
	archive := writeArchive(t, [][2]string{
		{"etc/os-release", "->../usr/lib/os-release"},
		{"usr/lib/os-release", "VERSION_CODENAME=bookworm\n"},
	})
	err := extractKeyFiles(archive, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "no var/lib/dpkg/status") {
		t.Fatalf("err = %v, want one naming the missing var/lib/dpkg/status", err)
	}
}

// The services part's set keys its cache directory by its order, which
// --fetch-packages must share: Redis first.
func TestServicePackages(t *testing.T) {
	if got := strings.Join(servicePackages(true), " "); got != "redis-server postgresql-15" {
		t.Errorf("servicePackages(true) = %q", got)
	}
	if got := strings.Join(servicePackages(false), " "); got != "redis-server" {
		t.Errorf("servicePackages(false) = %q", got)
	}
}
