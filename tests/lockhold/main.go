// Command lockhold does in a test's container what MariaDB does with its
// data files: it holds a POSIX (fcntl) lock and a BSD (flock) lock on a
// file of the container's rootfs, writes its pid to DIR/ready and sleeps,
// so that a test can checkpoint a container whose tasks hold locks on
// files its restore rehearsal shares (tests/restore_proof_test.go). With
// -check it only tries to take both locks, without waiting, and exits 1
// if another process holds either.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	file := flag.String("file", "/lockfile", "the file to lock")
	dir := flag.String("dir", "/var/lib/lockhold", "where to write ready")
	check := flag.Bool("check", false, "try the locks, do not hold them")
	flag.Parse()
	f, err := os.OpenFile(*file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	posix := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &posix); err != nil {
		fmt.Println("fcntl lock held elsewhere:", err)
		os.Exit(1)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		fmt.Println("flock held elsewhere:", err)
		os.Exit(1)
	}
	if *check {
		fmt.Println("both locks free")
		return
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	tmp := filepath.Join(*dir, "ready.tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("pid %d\n", os.Getpid())), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(*dir, "ready")); err != nil {
		log.Fatal(err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
