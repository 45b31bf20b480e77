package lazypages

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CRIUPids finds the CRIU processes working on the image directory dir:
// `-D dir` on their command line.
func CRIUPids(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "criu" {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if (args[i] == "-D" || args[i] == "--images-dir") && filepath.Clean(args[i+1]) == filepath.Clean(dir) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// holdingPids are the processes other than this one and its parent that
// hold a file in dir open: CRIU's restore, and the container's tasks that
// it has not finished restoring, which keep its log open until then. The
// link is matched on dir's base name (random, see freshDir), since a task
// in the container's mount namespace sees the path from there.
func holdingPids(dir string) []int {
	mark := "/" + filepath.Base(dir) + "/"
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || pid == os.Getppid() {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && strings.Contains(link, mark) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
