package tests

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"ctrfs/internal/tree"
)

// memhog (bench/memhog) in a test's container: a process that holds MiB
// of dirtied anonymous memory, so that a checkpoint has that much to save,
// and that shows whether it survived one with its memory intact.

type memhog struct {
	d        *Daemon
	name     string
	pid, sum string // from its ready file
}

// startMemhog builds memhog, puts it in the container's rootfs as a
// respawned service of its init and waits until it has filled mib MiB.
func startMemhog(t *testing.T, d *Daemon, name string, mib int) *memhog {
	t.Helper()
	bin := d.rootfs(name, "memhog")
	build := exec.Command("go", "build", "-o", bin, "../bench/memhog")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build memhog: %v: %s", err, out)
	}
	appendFile(t, d.rootfs(name, "etc/inittab"),
		"::respawn:/memhog --mib "+strconv.Itoa(mib)+" --dir /var/lib/memhog --interval 1s\n")
	d.MustSh("lxc-attach -P " + d.LXCPath + " -n " + name + " -- kill -HUP 1")
	h := &memhog{d: d, name: name}
	var ready map[string]string
	waitLong(t, "memhog to fill its memory", 2*time.Minute, func() bool {
		ready = h.read("ready")
		return ready["sum"] != ""
	})
	h.pid, h.sum = ready["pid"], ready["sum"]
	return h
}

func (h *memhog) read(file string) map[string]string {
	b, _ := os.ReadFile(h.d.rootfs(h.name, "var/lib/memhog", file))
	return tree.ParseKV(string(b))
}

// survived waits for memhog to check its memory again (its sequence
// number passes the one its sum file shows now: after a restore of a
// snapshot, the one of the snapshot's rootfs) and fails the test unless
// the same process did so and found every block as it wrote it.
func (h *memhog) survived(t *testing.T, what string) {
	t.Helper()
	last, _ := strconv.Atoi(h.read("sum")["seq"])
	var kv map[string]string
	waitLong(t, "memhog to check its memory "+what, time.Minute, func() bool {
		kv = h.read("sum")
		seq, _ := strconv.Atoi(kv["seq"])
		return seq > last || (kv["pid"] != "" && kv["pid"] != h.pid)
	})
	if kv["pid"] != h.pid || kv["bad-blocks"] != "0" || kv["sum"] != h.sum {
		t.Fatalf("memhog %s: %v; want pid %s, bad-blocks 0, sum %s (the process or its memory was lost)",
			what, kv, h.pid, h.sum)
	}
}
