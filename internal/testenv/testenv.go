// Package testenv is what a test calls when it needs root or a tool that
// `make deps` installs: where that is missing, the test is skipped with
// the reason, so that `go test ./...` by a developer without root, or
// before `make deps`, runs what it can and says what it left out.
//
// Under CI (CI=true in the environment, as CI services set it) a missing
// requirement is a broken setup rather than a reason to skip: the test
// fails, so that a run that tested nothing cannot pass.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI says whether this is a CI run, where nothing may be skipped for want
// of root or a tool.
func CI() bool { return os.Getenv("CI") == "true" }

// NeedRoot skips t unless it runs as root; why says what for.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root ("+why+")")
	}
}

// NeedTool returns the path of tool, or skips t when it is not in PATH;
// from says where it comes from ("make deps installs it").
func NeedTool(t testing.TB, tool, from string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		missing(t, fmt.Sprintf("needs %s (%s), which is not in PATH", tool, from))
	}
	return path
}

func missing(t testing.TB, reason string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s: under CI (CI=true) that is a broken setup, not a reason to skip", reason)
		return
	}
	t.Skip(reason)
}

// NeedDevice skips t unless the device file path exists (/dev/fuse in a
// container started without it); why says what for.
func NeedDevice(t testing.TB, path, why string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(t, fmt.Sprintf("needs %s (%s): %v", path, why, err))
	}
}

// Btrfs makes a btrfs filesystem of size bytes in a file under dir,
// mounts it on dir/mnt through a loop device, and returns the mount
// point; t's cleanup unmounts it (lazily, should a test leave a file
// open) and the loop device goes with the mount. It needs root and
// btrfs-progs' mkfs.btrfs (make deps installs it).
func Btrfs(t testing.TB, dir string, size int64) string {
	t.Helper()
	NeedRoot(t, "a loop-mounted btrfs")
	NeedTool(t, "mkfs.btrfs", "btrfs-progs: make deps installs it")
	img := dir + "/btrfs.img"
	mnt := dir + "/mnt"
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(size)
		f.Close()
	}
	if err == nil {
		err = os.MkdirAll(mnt, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s", img, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; unmounting lazily", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}
