// Command cgwatch does in a test's container what systemd does in every
// container on a cgroup2-only host: it moves the container's processes
// out of its root cgroup into a leaf, enables a controller for the root's
// children, moves itself into another child (a "unit") and watches, with
// inotify, a file that the controller adds there (systemd watches every
// unit's memory.events; hugetlb is the controller the test machine's
// cgroup2 has). It then writes its pid to DIR/ready and sleeps, so that a
// test can checkpoint and restore the watch (tests/cgroup2_watch_test.go).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	root := flag.String("root", "/sys/fs/cgroup", "the container's cgroup2 mount")
	controller := flag.String("controller", "hugetlb", "the controller to enable for the children")
	file := flag.String("file", "hugetlb.2MB.events", "the controller's file to watch in the unit")
	dir := flag.String("dir", "/var/lib/cgwatch", "where to write ready")
	flag.Parse()

	leaf, unit := filepath.Join(*root, "init"), filepath.Join(*root, "unit")
	for _, d := range []string{leaf, unit, *dir} {
		must(os.MkdirAll(d, 0o755))
	}
	// A cgroup with processes cannot enable controllers for its children.
	procs, err := os.ReadFile(filepath.Join(*root, "cgroup.procs"))
	must(err)
	for _, pid := range strings.Fields(string(procs)) {
		os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(pid), 0) // gone meanwhile: fine
	}
	must(os.WriteFile(filepath.Join(*root, "cgroup.subtree_control"), []byte("+"+*controller), 0))
	must(os.WriteFile(filepath.Join(unit, "cgroup.procs"), []byte(fmt.Sprint(os.Getpid())), 0))

	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	must(err)
	_, err = unix.InotifyAddWatch(fd, filepath.Join(unit, *file), unix.IN_MODIFY)
	must(err)
	must(os.WriteFile(filepath.Join(*dir, "ready"), []byte(fmt.Sprintf("pid %d\n", os.Getpid())), 0o644))
	for {
		time.Sleep(time.Hour)
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
