package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"ctrfs/fs"
)

// TestMountFUSEForksNoHelperWithDevFuse: a process forked while the daemon
// mounts never inherits /dev/fuse. A goroutine waits for /dev/fuse to show
// among the daemon's descriptors and forks at once, as an incoming move's
// helper could; the child lists what it inherited. Without the fork lock,
// the child forked between go-fuse's open and the close-on-exec got it.
func TestMountFUSEForksNoHelperWithDevFuse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting FUSE directly needs root")
	}
	for i := 0; i < 20; i++ {
		dir := t.TempDir()
		inherited := make(chan string, 1)
		go func() {
			for !hasDevFuse() {
			}
			out, err := exec.Command("ls", "-l", "/proc/self/fd").CombinedOutput()
			if err != nil {
				inherited <- err.Error()
				return
			}
			inherited <- string(out)
		}()
		server, err := mountFUSE(dir, &gofs.Inode{}, fs.Options())
		if err != nil {
			t.Fatal(err)
		}
		got := <-inherited
		if err := server.Unmount(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, "/dev/fuse") {
			t.Fatalf("mount %d: a process forked during the mount inherited /dev/fuse:\n%s", i, got)
		}
	}
}

// hasDevFuse says whether this process has /dev/fuse open.
func hasDevFuse() bool {
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); target == "/dev/fuse" {
			return true
		}
	}
	return false
}
