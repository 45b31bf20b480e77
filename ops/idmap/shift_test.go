package idmap

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

var testMap = Map{UID: 1000000, GID: 2000000}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
}

func owner(t *testing.T, path string) (uint32, uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid, st.Mode & 0o7777
}

// Owners move into the map, symlinks are changed themselves and never
// followed, a file with two links is shifted once, setuid bits stay.
func TestShiftOwnersLinksAndSetuid(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	outside := t.TempDir() // a symlink's target that must stay as it is
	must(t, os.WriteFile(filepath.Join(outside, "host"), nil, 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	bb := filepath.Join(root, "bin/busybox")
	must(t, os.WriteFile(bb, []byte("x"), 0o755))
	must(t, os.Chown(bb, 0, 0))
	must(t, os.Link(bb, filepath.Join(root, "init"))) // a hard link
	su := filepath.Join(root, "bin/su")
	must(t, os.WriteFile(su, nil, 0o755))
	must(t, os.Chown(su, 0, 5))
	must(t, unix.Chmod(su, 0o6755)) // os.Chmod would need os.ModeSetuid
	must(t, os.Symlink(filepath.Join(outside, "host"), filepath.Join(root, "escape")))
	must(t, unix.Lchown(filepath.Join(root, "escape"), 7, 8))

	if err := Shift(root, testMap); err != nil {
		t.Fatal(err)
	}
	if u, g, _ := owner(t, root); u != 1000000 || g != 2000000 {
		t.Errorf("rootfs dir owned by %d:%d", u, g)
	}
	if u, g, _ := owner(t, bb); u != 1000000 || g != 2000000 {
		t.Errorf("hard-linked file owned by %d:%d, want shifted once to 1000000:2000000", u, g)
	}
	if u, g, mode := owner(t, su); u != 1000000 || g != 2000005 || mode != 0o6755 {
		t.Errorf("setuid file is %d:%d %o, want 1000000:2000005 6755", u, g, mode)
	}
	if u, g, _ := owner(t, filepath.Join(root, "escape")); u != 1000007 || g != 2000008 {
		t.Errorf("symlink owned by %d:%d", u, g)
	}
	if u, g, _ := owner(t, filepath.Join(outside, "host")); u != 0 || g != 0 {
		t.Errorf("the symlink was followed: its target is now %d:%d", u, g)
	}
}

// An id the map cannot hold is refused, naming the file.
func TestShiftRefusesIDsOutsideTheMap(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	f := filepath.Join(root, "big")
	must(t, os.WriteFile(f, nil, 0o644))
	must(t, os.Chown(f, 70000, 0))
	err := Shift(root, testMap)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("big")) {
		t.Fatalf("Shift of a file of uid 70000: %v", err)
	}
}

// A v2 file capability (the host's root's) becomes v3 for the container's
// root, with the same sets and effective flag; a v3 one moves with the map.
func TestCapsV2BecomeV3(t *testing.T) {
	v2 := make([]byte, capSizeV2)
	binary.LittleEndian.PutUint32(v2, capRevision2|1)
	binary.LittleEndian.PutUint32(v2[4:], 1<<13) // cap_net_raw
	got, err := capsV3(v2, 1000000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != capSizeV3 || binary.LittleEndian.Uint32(got) != capRevision3|1 ||
		!bytes.Equal(got[4:20], v2[4:20]) || binary.LittleEndian.Uint32(got[20:]) != 1000000 {
		t.Fatalf("v3 = %x", got)
	}
	binary.LittleEndian.PutUint32(got[20:], 5)
	again, err := capsV3(got, 1000000)
	if err != nil || binary.LittleEndian.Uint32(again[20:]) != 1000005 {
		t.Fatalf("v3 for root 5: %x %v", again, err)
	}
	if _, err := capsV3(v2[:7], 1000000); err == nil {
		t.Fatal("a truncated capability was shifted")
	}
}

// On a real file: chown drops the capability, Shift writes it back as v3.
func TestShiftKeepsFileCapabilities(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	f := filepath.Join(root, "ping")
	must(t, os.WriteFile(f, nil, 0o755))
	v2 := make([]byte, capSizeV2)
	binary.LittleEndian.PutUint32(v2, capRevision2|1)
	binary.LittleEndian.PutUint32(v2[4:], 1<<13)
	if err := unix.Setxattr(f, capXattr, v2, 0); err != nil {
		t.Skipf("no file capabilities here: %v", err)
	}
	must(t, Shift(root, testMap))
	got, err := getXattr(f, capXattr)
	if err != nil || len(got) != capSizeV3 || binary.LittleEndian.Uint32(got[20:]) != 1000000 {
		t.Fatalf("capability after the shift: %x %v", got, err)
	}
}

func aclXattr(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// ACL_USER ids move with the uid map, ACL_GROUP ids with the gid map, the
// other entries (no id) stay.
func TestShiftACL(t *testing.T) {
	const none = 0xFFFFFFFF
	in := aclXattr([3]uint32{0x01, 7, none}, [3]uint32{aclUser, 6, 33}, [3]uint32{0x04, 5, none},
		[3]uint32{aclGroup, 4, 44}, [3]uint32{0x10, 7, none}, [3]uint32{0x20, 4, none})
	want := aclXattr([3]uint32{0x01, 7, none}, [3]uint32{aclUser, 6, 1000033}, [3]uint32{0x04, 5, none},
		[3]uint32{aclGroup, 4, 2000044}, [3]uint32{0x10, 7, none}, [3]uint32{0x20, 4, none})
	got, err := shiftACL(in, testMap)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("shiftACL = %x, %v; want %x", got, err, want)
	}
	if _, err := shiftACL(aclXattr([3]uint32{aclUser, 6, 70000}), testMap); err == nil {
		t.Fatal("an ACL entry for uid 70000 was shifted")
	}
	if _, err := shiftACL(in[:9], testMap); err == nil {
		t.Fatal("a truncated ACL was shifted")
	}
	// On a real file, where the file system keeps ACLs.
	needRoot(t)
	root := t.TempDir()
	f := filepath.Join(root, "shared")
	must(t, os.WriteFile(f, nil, 0o644))
	acl := aclXattr([3]uint32{0x01, 6, none}, [3]uint32{aclUser, 6, 33}, [3]uint32{0x04, 4, none},
		[3]uint32{0x10, 6, none}, [3]uint32{0x20, 4, none})
	if err := unix.Setxattr(f, aclXattrs[0], acl, 0); err != nil {
		t.Skipf("no POSIX ACLs here: %v", err)
	}
	must(t, Shift(root, testMap))
	got, err = getXattr(f, aclXattrs[0])
	if err != nil || len(got) < 20 || binary.LittleEndian.Uint32(got[16:]) != 1000033 {
		t.Fatalf("ACL after the shift: %x %v", got, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A shift cut short finishes when run again: files already in the map
// are left, the others shifted.
func TestShiftAgainFinishesAShiftCutShort(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	must(t, os.WriteFile(a, nil, 0o644))
	must(t, os.WriteFile(b, nil, 0o644))
	must(t, os.Chown(b, 3, 4))
	must(t, Shift(root, testMap))
	must(t, os.Chown(a, 0, 0)) // as if the first run had stopped before a
	must(t, Shift(root, testMap))
	if u, g, _ := owner(t, a); u != 1000000 || g != 2000000 {
		t.Errorf("a is %d:%d after the second run", u, g)
	}
	if u, g, _ := owner(t, b); u != 1000003 || g != 2000004 {
		t.Errorf("b, shifted by the first run, is %d:%d after the second", u, g)
	}
}

// LetRootRead opens images to the mapped gid only: directories 0710,
// images 0440, root's; other files stay root's alone.
func TestLetRootRead(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "parent"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "core-1.img"), nil, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "parent", "pages-1.img"), nil, 0o400))
	must(t, os.WriteFile(filepath.Join(dir, "ctrfs-config"), nil, 0o600))
	must(t, Map{UID: 1000000, GID: 1000007}.LetRootRead(dir))
	if u, g, m := owner(t, filepath.Join(dir, "ctrfs-config")); u != 0 || g != 0 || m&0o7777 != 0o600 {
		t.Errorf("ctrfs-config, not an image: %d:%d %o; want root's 0600", u, g, m&0o7777)
	}
	for p, mode := range map[string]uint32{"": 0o710, "parent": 0o710, "core-1.img": 0o440, "parent/pages-1.img": 0o440} {
		u, g, m := owner(t, filepath.Join(dir, p))
		if u != 0 || g != 1000007 || m&0o7777 != mode {
			t.Errorf("%s: %d:%d %o; want 0:1000007 %o", p, u, g, m&0o7777, mode)
		}
	}
}
