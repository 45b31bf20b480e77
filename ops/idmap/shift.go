package idmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Shift moves the owners of every file under root (root too) into the
// map: id N becomes m.UID+N (m.GID+N), once, at create; a container
// started later finds its files its own. It walks without following
// symlinks, shifts a file with several links once, keeps the setuid and
// setgid bits that chown clears, rewrites file capabilities for the
// container's root (as v3 with rootid m.UID, as LXD's shift does: the
// kernel ignores a v2 capability of the host's root inside the user
// namespace, and chown drops it anyway) and shifts the ids in POSIX ACLs.
// An id outside 0..Size-1 is an error: the container could not own it. A
// file owned inside the map already is left as it is, so that a shift cut
// short (a crash, a full disk) finishes when run again.
func Shift(root string, m Map) error {
	seen := map[[2]uint64]bool{} // (dev, ino) of files with several links
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		if st.Nlink > 1 && d.Type()&fs.ModeDir == 0 {
			key := [2]uint64{st.Dev, st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		if err := shiftOne(path, &st, m); err != nil {
			return fmt.Errorf("shift %s into the container's ids: %w", path, err)
		}
		return nil
	})
}

func shiftOne(path string, st *unix.Stat_t, m Map) error {
	if m.UID >= Size && m.GID >= Size && st.Uid-m.UID < Size && st.Gid-m.GID < Size {
		return nil // shifted by a run cut short
	}
	if st.Uid >= Size || st.Gid >= Size {
		return fmt.Errorf("owner %d:%d is outside the map's %d ids", st.Uid, st.Gid, Size)
	}
	link := st.Mode&unix.S_IFMT == unix.S_IFLNK
	var caps []byte
	var acls [][2][]byte // name, value
	if !link {
		var err error
		if caps, err = getXattr(path, capXattr); err != nil {
			return err
		}
		for _, name := range aclXattrs {
			v, err := getXattr(path, name)
			if err != nil {
				return err
			}
			if v != nil {
				acls = append(acls, [2][]byte{[]byte(name), v})
			}
		}
	}
	if err := unix.Lchown(path, int(m.UID+st.Uid), int(m.GID+st.Gid)); err != nil {
		return err
	}
	if link {
		return nil
	}
	// chown clears S_ISUID and S_ISGID of a regular file: put them back.
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
			return err
		}
	}
	for _, a := range acls {
		v, err := shiftACL(a[1], m)
		if err != nil {
			return fmt.Errorf("%s: %w", a[0], err)
		}
		if err := unix.Lsetxattr(path, string(a[0]), v, 0); err != nil {
			return fmt.Errorf("%s: %w", a[0], err)
		}
	}
	if caps != nil {
		v, err := capsV3(caps, m.UID)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(path, capXattr, v, 0); err != nil {
			return fmt.Errorf("%s: %w", capXattr, err)
		}
	}
	return nil
}

const capXattr = "security.capability"

var aclXattrs = []string{"system.posix_acl_access", "system.posix_acl_default"}

// getXattr is the value of an extended attribute, nil if the file has none
// (or its file system keeps none).
func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		switch {
		case errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP):
			return nil, nil
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, len(buf)*4)
			continue
		case err != nil:
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return buf[:n], nil
	}
}

// The layout of security.capability (linux/capability.h): a magic word
// with the revision and the effective flag, permitted and inheritable
// sets of two words each, and in v3 the uid of the root it is for.
const (
	capRevisionMask = 0xFF000000
	capRevision2    = 0x02000000
	capRevision3    = 0x03000000
	capFlagsMask    = ^uint32(capRevisionMask)
	capSizeV2       = 20
	capSizeV3       = 24
)

// capsV3 is a file capability rewritten for the container's root: v3 with
// rootid. A v3 one already for a root inside the map moves with it.
func capsV3(v []byte, rootid uint32) ([]byte, error) {
	if len(v) < 4 {
		return nil, fmt.Errorf("%s of %d bytes", capXattr, len(v))
	}
	magic := binary.LittleEndian.Uint32(v)
	out := make([]byte, capSizeV3)
	switch {
	case magic&capRevisionMask == capRevision2 && len(v) == capSizeV2:
	case magic&capRevisionMask == capRevision3 && len(v) == capSizeV3:
		old := binary.LittleEndian.Uint32(v[20:])
		if old >= Size {
			return nil, fmt.Errorf("%s for root %d, outside the map", capXattr, old)
		}
		rootid += old
	default:
		return nil, fmt.Errorf("%s of revision %#x and %d bytes: not one ctrfs can shift", capXattr, magic&capRevisionMask, len(v))
	}
	binary.LittleEndian.PutUint32(out, capRevision3|magic&capFlagsMask)
	copy(out[4:20], v[4:20])
	binary.LittleEndian.PutUint32(out[20:], rootid)
	return out, nil
}

// The layout of a POSIX ACL xattr (linux/posix_acl_xattr.h): a version
// word, then entries of tag (2 bytes), permissions (2) and id (4); only
// ACL_USER and ACL_GROUP entries carry an id.
const (
	aclVersion   = 2
	aclUser      = 0x02
	aclGroup     = 0x08
	aclEntrySize = 8
)

func shiftACL(v []byte, m Map) ([]byte, error) {
	if len(v) < 4 || (len(v)-4)%aclEntrySize != 0 || binary.LittleEndian.Uint32(v) != aclVersion {
		return nil, fmt.Errorf("an ACL of %d bytes that ctrfs cannot read", len(v))
	}
	out := append([]byte(nil), v...)
	for off := 4; off < len(out); off += aclEntrySize {
		tag := binary.LittleEndian.Uint16(out[off:])
		base := m.UID
		switch tag {
		case aclUser:
		case aclGroup:
			base = m.GID
		default:
			continue
		}
		id := binary.LittleEndian.Uint32(out[off+4:])
		if id >= Size {
			return nil, fmt.Errorf("ACL entry for id %d, outside the map", id)
		}
		binary.LittleEndian.PutUint32(out[off+4:], base+id)
	}
	return out, nil
}
