// Command ttyfg leaves, in a test's container, a terminal in the state an
// interactive shell leaves it in for a moment after each command: the
// terminal's foreground process group is one that no task is in any more.
// A shell with job control runs a command as a process group of its own
// and gives it the terminal; when the command has exited and the shell
// has reaped it, the terminal names the dead group until the shell takes
// it back. A checkpoint taken in that moment must still restore
// (tests/restore_tty_test.go).
//
// Run without flags it opens a pty, starts itself with -leader as the
// leader of a new session whose controlling terminal is the pty's slave,
// and holds the master. The leader starts a child in a process group of
// its own in the foreground of the terminal, reaps it, checks that the
// terminal still names the child's group and that the group is empty,
// writes its pid to DIR/ready and sleeps without taking the terminal back.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	leader := flag.Bool("leader", false, "be the session leader (internal)")
	exit := flag.Bool("exit", false, "exit at once (internal)")
	dir := flag.String("dir", "/var/lib/ttyfg", "where to write ready")
	flag.Parse()
	switch {
	case *exit:
		return
	case *leader:
		lead(*dir)
	default:
		hold(*dir)
	}
}

// hold opens the pty and starts the session leader on its slave.
func hold(dir string) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		log.Fatal("unlockpt: ", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		log.Fatal("ptsname: ", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe", "-leader", "-dir", dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	slave.Close()
	// Hold the master (and drain what the leader writes) for ever.
	buf := make([]byte, 4096)
	for {
		if _, err := master.Read(buf); err != nil {
			time.Sleep(time.Hour)
		}
	}
}

// lead runs one foreground child to its end and keeps the terminal as the
// child's exit left it.
func lead(dir string) {
	child := exec.Command("/proc/self/exe", "-exit")
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	group := child.Process.Pid
	if err := child.Wait(); err != nil {
		log.Fatal(err)
	}
	fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	if err != nil {
		log.Fatal("tcgetpgrp: ", err)
	}
	if fg != group {
		log.Fatalf("the terminal's foreground group is %d, not the dead child's %d", fg, group)
	}
	if err := unix.Kill(-group, 0); err != unix.ESRCH {
		log.Fatalf("group %d still has tasks: %v", group, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	tmp := filepath.Join(dir, "ready.tmp")
	msg := fmt.Sprintf("pid %d\nforeground %d\n", os.Getpid(), fg)
	if err := os.WriteFile(tmp, []byte(msg), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "ready")); err != nil {
		log.Fatal(err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
