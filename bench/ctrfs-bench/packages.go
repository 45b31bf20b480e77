package main

// The services part's package set, and --fetch-packages: the real-hosts
// test bed's guests reach no mirror, so scripts/vmtest/bench.sh has this
// host's apt fill the cache for the set the bench installs there, and
// copies the directory in. internal/debpkg keys a directory by the
// container's dpkg status, which a container made from the debian
// template has from the template's archive: the three files that key
// reads are taken from that archive.

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"

	"ctrfs/internal/debpkg"
)

// servicePackages is the services part's set, in the order that keys its
// cache directory: Redis, and PostgreSQL where it is measured.
func servicePackages(postgres bool) []string {
	pkgs := []string{"redis-server"}
	if postgres {
		pkgs = append(pkgs, "postgresql-15")
	}
	return pkgs
}

// keyFiles are what debpkg.Dir reads of a rootfs; etc/os-release is a
// symlink to the one in usr/lib.
var keyFiles = map[string]bool{"etc/os-release": true, "usr/lib/os-release": true, "var/lib/dpkg/status": true}

// fetchPackages fills the package cache with the services part's whole
// set (PostgreSQL too, as on a host whose root checkpoints other users'
// tasks) for a container of templateCache's debian archive, downloading
// it with this host's apt unless it is there, and returns its directory.
func fetchPackages(templateCache string) (dir string, downloaded bool, err error) {
	mirror, err := debpkg.TemplateMirror(templateCache)
	if err != nil {
		return "", false, err
	}
	tmp, err := os.MkdirTemp("", "ctrfs-bench-template-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp)
	archive := filepath.Join(templateCache, "debian.tar.zst")
	if err := extractKeyFiles(archive, tmp); err != nil {
		return "", false, fmt.Errorf("%s: %w", archive, err)
	}
	return debpkg.Dir(tmp, mirror, servicePackages(true))
}

// extractKeyFiles writes keyFiles of the rootfs archive under dir.
func extractKeyFiles(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	found := map[string]bool{}
	for len(found) < len(keyFiles) {
		h, err := tr.Next()
		if err == io.EOF {
			var missing []string
			for name := range keyFiles {
				if !found[name] {
					missing = append(missing, name)
				}
			}
			sort.Strings(missing)
			return fmt.Errorf("no %s in it", strings.Join(missing, ", "))
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if !keyFiles[name] || found[name] {
			continue
		}
		found[name] = true
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, dst)
		case tar.TypeReg:
			err = writeFile(dst, tr)
		default:
			err = fmt.Errorf("%s is not a file or symlink", h.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, r io.Reader) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
