package fs

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

func TestProcessIdentity(t *testing.T) {
	tgid, err := threadGroup(os.Getpid())
	if err != nil || tgid != os.Getpid() {
		t.Fatalf("threadGroup: %d, %v", tgid, err)
	}
	start, err := startTime(tgid)
	if err != nil || start == 0 {
		t.Fatalf("startTime: %d, %v", start, err)
	}
}

// A refusal pins the container against the same process's rmdir only.
func TestRemovalGuard(t *testing.T) {
	g := newRemovalGuard()
	self := fuse.NewContext(context.Background(), &fuse.Caller{Pid: uint32(os.Getpid())})
	other := fuse.NewContext(context.Background(), &fuse.Caller{Pid: 1})
	g.refuse(other, "c2") // another container's entry, to be kept
	if e := g.allowRmdir(self, "c1"); e != 0 {
		t.Fatalf("before any refusal: %v", e)
	}
	if e := g.refuse(self, "c1"); e != syscall.EPERM {
		t.Fatalf("refuse: %v", e)
	}
	if e := g.allowRmdir(self, "c1"); e != syscall.ENOTEMPTY {
		t.Fatalf("after a refusal: %v", e)
	}
	if e := g.allowRmdir(other, "c1"); e != 0 {
		t.Fatalf("another process: %v", e)
	}
	if e := g.allowRmdir(self, "c2"); e != 0 {
		t.Fatalf("another container: %v", e)
	}
	if e := g.allowRmdir(other, "c2"); e != syscall.ENOTEMPTY {
		t.Fatalf("the other container's refusal was lost: %v", e)
	}
}
