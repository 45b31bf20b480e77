// Package trust is the one check of every directory and file of the store
// that ctrfs trusts: root's, not group/other-writable, not a symlink. It
// holds no state and knows nothing of chunks, manifests or keys: the images
// package checks its layout and manifests with it, and ops and cluster their
// own files.
package trust

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// What ctrfs reads back from its store (manifests, journals, staged CRIU
// images, template archives) decides what runs as root, so it is trusted
// only if no other user could have made or changed it: every directory and
// file is checked here, by one set of rules, before it is read or written.
// A directory passes if it is not a symlink, belongs to the daemon's user
// (root) and no other user may write it; a file likewise. The directories
// named on the command line are checked with the whole path to them
// (TrustedRoot), once, when the daemon starts.

// ErrUntrusted is wrapped by every refusal of the checks below.
var ErrUntrusted = errors.New("not trusted")

// untrusted is a refusal: what is wrong with which path.
type untrusted struct{ path, reason string }

func (e *untrusted) Error() string        { return e.path + " " + e.reason }
func (e *untrusted) Is(target error) bool { return target == ErrUntrusted }

// Group and other bits that the checks forbid: writing, for what only
// must not be changed; everything, for what must not even be read
// (staging, which holds containers' memory).
const (
	othersWrite = 0o022
	othersAny   = 0o077
)

// TrustedDir checks that dir is a directory of the daemon's own that no
// other user can write.
func TrustedDir(dir string) error { return checkPath(dir, true, othersWrite) }

// PrivateDir checks that dir is a directory of the daemon's own that no
// other user can even enter (0700).
func PrivateDir(dir string) error { return checkPath(dir, true, othersAny) }

// TrustedFile checks that path is a regular file of the daemon's own that
// no other user can write.
func TrustedFile(path string) error { return checkPath(path, false, othersWrite) }

// ReadTrusted reads a small file (a journal) that TrustedFile accepts.
func ReadTrusted(path string) ([]byte, error) {
	f, _, err := OpenTrusted(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// OpenTrusted opens a file that TrustedFile accepts, checking the file it
// opened: a symlink is not followed, and a FIFO in its place does not
// block the reader.
func OpenTrusted(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, &untrusted{path, "is a symlink"}
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkInfo(path, fi, false, othersWrite)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func checkPath(path string, dir bool, forbidden uint32) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	return checkInfo(path, fi, dir, forbidden)
}

// TrustedInfo checks a file's fi, as Lstat returned it, as TrustedFile
// checks the file at path, without opening it again.
func TrustedInfo(path string, fi fs.FileInfo) error { return checkInfo(path, fi, false, othersWrite) }

// checkInfo applies the rules to what lstat(2) or fstat(2) said of path.
func checkInfo(path string, fi fs.FileInfo, dir bool, forbidden uint32) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return &untrusted{path, "has no owner that can be read"}
	case fi.Mode()&fs.ModeSymlink != 0:
		return &untrusted{path, "is a symlink"}
	case dir && !fi.IsDir():
		return &untrusted{path, "is not a directory"}
	case !dir && !fi.Mode().IsRegular():
		return &untrusted{path, "is not a regular file"}
	case int(st.Uid) != os.Geteuid():
		return &untrusted{path, fmt.Sprintf("belongs to uid %d, not to the daemon's uid %d", st.Uid, os.Geteuid())}
	case st.Mode&forbidden != 0:
		who := "group or others can write it"
		if forbidden == othersAny {
			who = "it must be 0700"
		}
		return &untrusted{path, fmt.Sprintf("has mode %04o: %s", st.Mode&0o7777, who)}
	}
	return nil
}

// maxLinks bounds the symlinks TrustedRoot follows, as the kernel's
// ELOOP does.
const maxLinks = 40

// TrustedRoot checks a directory that the daemon is told to keep its
// state in (the store, the LXC path, the template cache) and the path to
// it: dir passes TrustedDir, and everything on the way from / belongs to
// root or the daemon's user, so that no other user can move or replace
// any part of it. A directory on the way that others may write (/tmp)
// must be sticky, so that they cannot rename what is in it; a symlink on
// the way is followed, and must be root's too (only its owner may replace
// it in a sticky directory).
func TrustedRoot(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	at := "/"
	if err := onTheWay(at); err != nil {
		return err
	}
	rest := strings.Split(abs, "/")
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		next := filepath.Join(at, name) // at has no symlink, so ".." is lexical
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if err := onTheWay(next); err != nil {
				return err
			}
			at = next
			continue
		}
		if err := ownedByRoot(next, fi); err != nil {
			return err
		}
		if links++; links > maxLinks {
			return &untrusted{abs, "has too many symlinks on the way"}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			at = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return TrustedDir(at)
}

// onTheWay checks a directory on the path to a TrustedRoot.
func onTheWay(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &untrusted{dir, "is not a directory"}
	}
	if err := ownedByRoot(dir, fi); err != nil {
		return err
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Mode&othersWrite != 0 && st.Mode&syscall.S_ISVTX == 0 {
		return &untrusted{dir, fmt.Sprintf("has mode %04o: group or others can write it, and it is not sticky", st.Mode&0o7777)}
	}
	return nil
}

// ownedByRoot checks that root or the daemon's user owns path.
func ownedByRoot(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &untrusted{path, "has no owner that can be read"}
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return &untrusted{path, fmt.Sprintf("belongs to uid %d, not to root", st.Uid)}
	}
	return nil
}
