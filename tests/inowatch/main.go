// Command inowatch does in a test's container what systemd and its
// services do: it watches, with inotify, files of a cgroup2 cgroup (the
// container's own), each for IN_MODIFY, from each of several inotify
// instances (each instance's fdinfo is one more read for a checkpoint to
// get right). It then writes "pid PID watches N" (N of all instances) to
// DIR/ready and sleeps, so that a test can
// checkpoint the watches while cgroup2 is being mounted elsewhere
// (tests/inotify_busy_test.go).
package main

import (
	"bufio"
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
	dir := flag.String("dir", "/var/lib/inowatch", "where to write ready")
	instances := flag.Int("instances", 25, "how many inotify instances watch the files")
	flag.Parse()
	root := cgroup2Mount()
	entries, err := os.ReadDir(root)
	must(err)
	n := 0
	for i := 0; i < *instances; i++ {
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
		must(err)
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			_, err := unix.InotifyAddWatch(fd, filepath.Join(root, e.Name()), unix.IN_MODIFY)
			if err == unix.EACCES {
				continue // the host's root's alone (cgroup.kill in an unprivileged container)
			}
			if err != nil {
				log.Fatalf("watch %s: %v", e.Name(), err)
			}
			n++
		}
	}
	must(os.MkdirAll(*dir, 0o755))
	must(os.WriteFile(filepath.Join(*dir, "ready"), []byte(fmt.Sprintf("pid %d watches %d\n", os.Getpid(), n)), 0o644))
	for {
		time.Sleep(time.Hour)
	}
}

// cgroup2Mount is where the container sees cgroup2.
func cgroup2Mount() string {
	f, err := os.Open("/proc/self/mounts")
	must(err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 2 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	// The busybox template mounts no cgroup2 here (a hybrid host): mount
	// it, as systemd does, in the container's cgroup namespace.
	dir := "/run/inowatch-cgroup2"
	must(os.MkdirAll(dir, 0o755))
	must(unix.Mount("none", dir, "cgroup2", 0, ""))
	return dir
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
