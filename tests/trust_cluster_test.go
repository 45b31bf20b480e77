package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startFails starts the daemon, which must exit non-zero without mounting;
// it returns the daemon's log.
func (d *Daemon) startFails() string {
	d.t.Helper()
	d.launch()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-d.exited:
			d.cmd = nil
			if err == nil {
				d.t.Fatalf("daemon %s exited 0; it should have failed\n%s", d.Name, d.Log())
			}
			return d.Log()
		default:
		}
		if d.mounted() {
			d.Kill()
			d.t.Fatalf("daemon %s started; it should have refused to\n%s", d.Name, d.Log())
		}
		if time.Now().After(deadline) {
			d.Kill()
			d.t.Fatalf("daemon %s neither mounted nor exited within 30s\n%s", d.Name, d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for a running daemon to exit by itself, which it must do
// non-zero; it returns the daemon's log.
func (d *Daemon) waitExit(why string) string {
	d.t.Helper()
	select {
	case err := <-d.exited:
		d.cmd = nil
		if err == nil {
			d.t.Fatalf("daemon %s exited 0 %s\n%s", d.Name, why, d.Log())
		}
	case <-time.After(60 * time.Second):
		d.t.Fatalf("daemon %s still runs 60s %s\n%s", d.Name, why, d.Log())
	}
	return d.Log()
}

const makeSecret = "head -c 32 /dev/urandom > FILE; chmod 600 FILE"

// TestSecretFileRefused: a secret file others can read, or a short secret,
// stops the daemon (and `ctrfs probe`) with a message saying how to make one.
func TestSecretFileRefused(t *testing.T) {
	for _, c := range []struct {
		what, secret, want string
		mode               os.FileMode
	}{
		{"world-readable", newSecret(t), "chmod 600", 0o644},
		{"group-readable", newSecret(t), "chmod 600", 0o640},
		{"short", "s3cret\n", "at least 32 random bytes", 0o600},
		{"31 bytes", newSecret(t)[:31], "at least 32 random bytes", 0o600},
	} {
		file := secretFile(t, c.secret, c.mode)
		addr := fmt.Sprintf("%s:%d", loopback(2), nextPort.Add(2))
		d := NewDaemon(t, "dakara", "--bind", addr, "--secret-file", file)
		log := d.startFails()
		if !strings.Contains(log, c.want) || !strings.Contains(log, makeSecret) {
			t.Errorf("%s secret file: the daemon says\n%s", c.what, log)
		}
		out, err := exec.Command(ctrfsBin, "probe", "--secret-file", file, addr).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), makeSecret) {
			t.Errorf("%s secret file: probe says %v: %s", c.what, err, out)
		}
	}
}

// TestWeakSecretRefused (issue 18, item 2): a secret too regular to be
// random (32 repeated bytes, 32 NULs, a handful of values) and a 0600
// secret file owned by another user stop the daemon and `ctrfs probe`
// with a message saying how to make one.
func TestWeakSecretRefused(t *testing.T) {
	uid := probeUser(t)
	owned := secretFile(t, newSecret(t), 0o600)
	mustRun(t, "chown", uid, owned)
	for _, c := range []struct {
		what, file, want string
	}{
		{"32 a's", secretFile(t, strings.Repeat("a", 32)+"\n", 0o600), "only 1 distinct byte values"},
		{"32 NULs", secretFile(t, strings.Repeat("\x00", 32), 0o600), "only 1 distinct byte values"},
		{"8 values", secretFile(t, strings.Repeat("s3cret!?", 5), 0o600), "only 8 distinct byte values"},
		{"a byte a third of it", secretFile(t, newSecret(t)[:24]+strings.Repeat("x", 12), 0o600), "the byte 0x78 makes up"},
		{"another user's", owned, "owned by uid " + uid + ", not root"},
	} {
		addr := fmt.Sprintf("%s:%d", loopback(2), nextPort.Add(2))
		d := NewDaemon(t, "dakara", "--bind", addr, "--secret-file", c.file)
		log := d.startFails()
		if !strings.Contains(log, c.want) || !strings.Contains(log, makeSecret) {
			t.Errorf("%s secret file: the daemon says\n%s", c.what, log)
		}
		out, err := exec.Command(ctrfsBin, "probe", "--secret-file", c.file, addr).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), makeSecret) {
			t.Errorf("%s secret file: probe says %v: %s", c.what, err, out)
		}
	}
}

// TestWrongSecretSaysSo: a daemon joining with another secret logs an error
// that says so, and neither host shows the other.
func TestWrongSecretSaysSo(t *testing.T) {
	a := startPeer(t, "dakara", loopback(2), newSecret(t), "")
	c := startPeer(t, "abydos", loopback(4), newSecret(t), a.Addr)
	want := "join " + a.Addr + ": no answer with this cluster secret (wrong --secret-file?)"
	waitLong(t, "the wrong secret in abydos's log", 30*time.Second, func() bool {
		return strings.Contains(c.Log(), want)
	})
	if log := c.Log(); strings.Contains(log, "cluster: joined") || !strings.Contains(log, "level=ERROR") {
		t.Errorf("abydos's log:\n%s", log)
	}
	if h := c.hosts(); strings.Join(h, " ") != "abydos" {
		t.Errorf("a host with another secret sees %v", h)
	}
	if h := a.hosts(); strings.Join(h, " ") != "dakara" {
		t.Errorf("a host with another secret joined: %v", h)
	}
}

// TestDuplicateNameRefused: a daemon that joins under a name the cluster
// has already is refused on both sides: it exits non-zero saying so, at
// start or when it reaches the cluster later, and the host it collided
// with logs the refusal and goes on alone.
func TestDuplicateNameRefused(t *testing.T) {
	secret := newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := newPeer(t, "dakara", loopback(3), secret, a.Addr)
	log := b.startFails()
	if want := "a host named dakara is in the cluster already, at " + a.Addr; !strings.Contains(log, want) || !strings.Contains(log, "another --name") {
		t.Errorf("the second dakara says\n%s", log)
	}
	refused := "refused a host at " + b.Addr + " that joins as dakara, this host's name"
	waitLong(t, "the refusal in the first dakara's log", 30*time.Second, func() bool {
		return strings.Contains(a.Log(), refused)
	})
	if h := a.hosts(); strings.Join(h, " ") != "dakara" {
		t.Errorf("the first dakara sees %v", h)
	}

	// A daemon that starts before the host it joins, and meets the
	// name there when its retry reaches it, stops then.
	late := newPeer(t, "tollana", loopback(4), secret, "")
	early := newPeer(t, "tollana", loopback(5), secret, late.Addr)
	early.Start()
	late.Start()
	log = early.waitExit("after meeting a host of its name")
	if want := "a host named tollana is in the cluster already, at " + late.Addr; !strings.Contains(log, want) {
		t.Errorf("the tollana that joined says\n%s", log)
	}
	if h := late.hosts(); strings.Join(h, " ") != "tollana" {
		t.Errorf("the tollana that was joined sees %v", h)
	}
}
