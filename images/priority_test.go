package images

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ctrfs/internal/testenv"
)

// threadNices reads the nice value of each thread of this process.
func threadNices(t *testing.T) map[string]int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended meanwhile
		}
		// Fields after the command's closing parenthesis: state is
		// field 3, nice field 19.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		n, err := strconv.Atoi(f[19-3])
		if err != nil {
			t.Fatal(err)
		}
		out[p] = n
	}
	return out
}

// A boosted goroutine runs at storeNice, and when it is done no thread of
// the process is left with that priority for other goroutines to run on.
func TestBoostThreadEndsWithItsGoroutine(t *testing.T) {
	testenv.NeedRoot(t, "to raise a thread's priority")
	for p, n := range threadNices(t) {
		if n != 0 {
			t.Fatalf("%s runs at nice %d before the test (pid %d): run it at nice 0", p, n, os.Getpid())
		}
	}
	got := make(chan int)
	for range 8 {
		go func() {
			defer boostThread()()
			n, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
			if err != nil {
				n = -1
			}
			got <- 20 - n // the system call returns 20 - nice
		}()
		if n := <-got; n != storeNice {
			t.Fatalf("a boosted goroutine runs at nice %d, want %d", n, storeNice)
		}
	}
	// The goroutines have returned, their threads may take a moment.
	for range 100 {
		left := 0
		for _, n := range threadNices(t) {
			if n != 0 {
				left++
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a boosted thread outlived its goroutine")
}
