package idmap

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LetRootRead lets the container's root (its mapped gid) read a directory
// of CRIU images, and no one else: directories become root:GID 0710 and
// images (*.img) root:GID 0440; they stay root's. A restore of an
// unprivileged container needs it: its restored tasks open most images
// (core-, mm-, pagemap-, pages-, the netns images) after entering the
// container's user namespace, where host root's 0700 directory and 0400
// files are closed to them. CRIU opens them relative to the directory it
// opened first, so the directories above (0700 staging) may stay closed:
// another local user still reaches nothing. Other files (sockets, the
// container's config and rootfs archives that a snapshot keeps beside its
// images, the cgroups record) are read by root alone and left as they are.
func (m Map) LetRootRead(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var mode os.FileMode
		switch {
		case d.IsDir():
			mode = 0o710
		case d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".img"):
			mode = 0o440
		default:
			return nil
		}
		if err := os.Lchown(path, 0, int(m.GID)); err != nil {
			return err
		}
		return os.Chmod(path, mode)
	})
}
