// Command cgmount mounts cgroup2 on DIR and unmounts it again, as fast as
// it can, until it is killed: each mount holds the one cgroup2
// superblock's s_umount for a moment, as the start of any container does,
// and while it does the kernel leaves the file handle out of an inotify
// watch's fdinfo line on a cgroup2 file (tests/inotify_busy_test.go). Run
// it in a mount namespace of its own (unshare -m --propagation private),
// so that no mount of it is seen or left on the host.
package main

import (
	"log"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: cgmount DIR")
	}
	dir := os.Args[1]
	for {
		if err := unix.Mount("none", dir, "cgroup2", 0, ""); err != nil {
			log.Fatalf("mount cgroup2 on %s: %v", dir, err)
		}
		if err := unix.Unmount(dir, 0); err != nil {
			log.Fatalf("unmount %s: %v", dir, err)
		}
	}
}
