package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/fs"
	"ctrfs/internal/testenv"
)

// TestMountFUSEForksNoHelperWithDevFuse: a process forked while the daemon
// mounts never inherits /dev/fuse. A goroutine waits for /dev/fuse to show
// among the daemon's descriptors and forks at once, as an incoming move's
// helper could; the child lists what it inherited. Without the fork lock,
// the child forked between go-fuse's open and the close-on-exec got it.
func TestMountFUSEForksNoHelperWithDevFuse(t *testing.T) {
	testenv.NeedRoot(t, "to mount FUSE directly")
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

// TestMountFUSEAsksNothingOfItself: the daemon never waits on its own
// mount, so that a kill can never leave it waiting for its own answer (a
// killed daemon that did could not exit, and its mount hung everyone who
// used it). The tree's root here answers nothing until the test lets it:
// mountFUSE must return all the same. gofs.Mount's poll hack, an open of a
// file in the new mount, waited for the root's attributes.
func TestMountFUSEAsksNothingOfItself(t *testing.T) {
	testenv.NeedRoot(t, "to mount FUSE directly")
	root := &silentRoot{release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(root.release) }) }
	defer release()
	type result struct {
		server *fuse.Server
		err    error
	}
	mounted := make(chan result, 1)
	dir := t.TempDir()
	go func() {
		server, err := mountFUSE(dir, root, fs.Options())
		mounted <- result{server, err}
	}()
	var r result
	select {
	case r = <-mounted:
	case <-time.After(30 * time.Second):
		t.Error("mountFUSE waited for an answer from its own mount")
		release()
		r = <-mounted
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	release()
	if err := r.server.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// silentRoot is a tree whose root answers a GETATTR only once released.
type silentRoot struct {
	gofs.Inode
	release chan struct{}
}

func (r *silentRoot) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	<-r.release
	out.Mode = syscall.S_IFDIR | 0o755
	return 0
}
