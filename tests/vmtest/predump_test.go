//go:build vmtest

package vmtest

// Pre-dump against whole-dump precopy (issue 20, item 4): the bed's
// kernels track dirty memory, so a live move's precopy rounds are `criu
// pre-dump`s and its final dump writes only the pages dirtied since the
// last round; `move PEER --full-dumps` makes every round a whole dump, as
// on kernels without soft-dirty. The same container, with memhog holding
// MiB of memory and rewriting 10% of it a second, moves A -> B with
// pre-dumps and back with whole dumps; the figures are the pages the
// final dump wrote, the bytes sent while frozen, the time frozen during
// precopy and the downtime.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memhogBinary builds bench/memhog static for the VMs, once per run.
func memhogBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "memhog")
	c := exec.Command("go", "build", "-o", out, "./bench/memhog")
	c.Dir = filepath.Join(scripts(), "..", "..")
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build ./bench/memhog: %v: %s", err, b)
	}
	return out
}

// startMemhog creates a busybox container on v whose init runs memhog
// (mib MiB, rate MiB/s rewritten), starts it and waits until memhog has
// filled its memory. It returns memhog's pid in the container.
func startMemhog(t *testing.T, v *VM, name, bin string, mib int, rate float64) string {
	t.Helper()
	removeAfter(t, name)
	// Privileged, as when the 256 MiB figures in docs/performance.md
	// were taken (before new containers were unprivileged).
	v.MustSh(t, "echo 'create "+name+" --privileged' > ctl")
	rootfs := "/var/lib/lxc/" + name + "/rootfs"
	c := exec.Command("ssh", v.sshArgs(fmt.Sprintf("cat > %[1]s/memhog && chmod 755 %[1]s/memhog", rootfs))...)
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c.Stdin = f
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("copy memhog into %s on %s: %v: %s", name, v.Name, err, out)
	}
	if out, err := v.Run(fmt.Sprintf("echo '::respawn:/memhog --mib %d --rewrite-rate %g --dir /var/lib/memhog --interval 0' >> %s/etc/inittab", mib, rate, rootfs)); err != nil {
		t.Fatalf("%s: %v: %s", v.Name, err, out)
	}
	v.MustCtl(t, name, "start")
	var ready string
	waitFor(t, fmt.Sprintf("memhog in %s on %s to fill %d MiB", name, v.Name, mib), 10*time.Minute, func() bool {
		ready, _ = v.Run("cat " + rootfs + "/var/lib/memhog/ready 2>/dev/null")
		return strings.Contains(ready, "pid:")
	})
	for _, l := range strings.Split(ready, "\n") {
		if p, ok := strings.CutPrefix(l, "pid: "); ok {
			return strings.TrimSpace(p)
		}
	}
	t.Fatalf("memhog's ready file names no pid:\n%s", ready)
	return ""
}

// memhogPID is the pid memhog runs under in the container now.
func memhogPID(v *VM, name string) string {
	out, _ := v.InContainer(name, "pidof memhog")
	return strings.TrimSpace(out)
}

// precopyMove moves name from one VM to the other (args after the host:
// "" or " --full-dumps"), checks memhog survived it, and returns the
// target's info.
func precopyMove(t *testing.T, name, pid string, from, to *VM, args string) map[string]string {
	t.Helper()
	start := time.Now()
	// Each round dumps, stores and sends the memory under emulation: a
	// 256 MiB move took 13 minutes, a 1 GiB one well over shTimeout.
	if err := from.CtlWithin(name, "move "+to.Name+args, 2*time.Hour); err != nil {
		t.Fatalf("move %s -> %s%s: %v%s", from.Name, to.Name, args, err, from.why(name))
	}
	took := time.Since(start)
	to.WantStatus(t, name, "RUNNING", "after the move")
	if got := memhogPID(to, name); got != pid {
		t.Fatalf("memhog runs as pid %q in %s on %s after the move, was %s: it did not survive", got, name, to.Name, pid)
	}
	info := to.Info(name)
	t.Logf("move %s -> %s%s: write %.1f s\n%s", from.Name, to.Name, args, took.Seconds(),
		pick(info, "precopy-mode", "precopy-rounds", "precopy-round-pages", "precopy-round-bytes", "precopy-frozen-seconds",
			"freeze-criu-pages-written", "freeze-sent-bytes", "freeze-dump-seconds", "freeze-store-seconds", "freeze-send-seconds",
			"downtime-seconds", "move-seconds"))
	return info
}

func TestPreDumpAgainstWholeDumps(t *testing.T) {
	bin := memhogBinary(t)
	for _, mib := range []int{256, 1024} {
		t.Run(fmt.Sprintf("%dMiB", mib), func(t *testing.T) {
			name := fmt.Sprintf("pd%d", mib)
			rate := float64(mib) / 10
			pid := startMemhog(t, vmA, name, bin, mib, rate)
			pre := precopyMove(t, name, pid, vmA, vmB, "")
			full := precopyMove(t, name, pid, vmB, vmA, " --full-dumps")
			if pre["precopy-mode"] != "pre-dump" {
				t.Errorf("%s -> %s: precopy-mode %q where the kernel tracks dirty memory, want pre-dump", vmA.Name, vmB.Name, pre["precopy-mode"])
			}
			if full["precopy-mode"] != "dump" {
				t.Errorf("%s -> %s --full-dumps: precopy-mode %q, want dump", vmB.Name, vmA.Name, full["precopy-mode"])
			}
			// memhog rewrites only its random half: after a pre-dump round
			// the final dump cannot write the text half again.
			prePages, _ := strconv.Atoi(pre["freeze-criu-pages-written"])
			fullPages, _ := strconv.Atoi(full["freeze-criu-pages-written"])
			if prePages <= 0 || prePages >= fullPages {
				t.Errorf("the final dump wrote %d pages after pre-dumps, %d after whole dumps: want fewer after pre-dumps", prePages, fullPages)
			}
			t.Logf("FIGURE pre-dump vs whole dumps, %d MiB rewritten at %.1f MiB/s (%s -> %s / back): final dump pages %s / %s, freeze-sent-bytes %s / %s, frozen during precopy %s / %s s, downtime %s / %s s",
				mib, rate, vmA.Name, vmB.Name,
				pre["freeze-criu-pages-written"], full["freeze-criu-pages-written"],
				pre["freeze-sent-bytes"], full["freeze-sent-bytes"],
				pre["precopy-frozen-seconds"], full["precopy-frozen-seconds"],
				pre["downtime-seconds"], full["downtime-seconds"])
			// The next size needs the memory back on both hosts.
			vmA.Sh(fmt.Sprintf("echo stop > containers/%[1]s/ctl; rmdir containers/%[1]s", name))
		})
	}
}
