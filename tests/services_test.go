package tests

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDebianServices: stock Debian service packages, installed into a
// debian-template container with their stock units, go through
// stop-stateful/start, a stateful snapshot and its restore, a live move
// and a post-copy move with their clients writing all along, and no
// acknowledged write is lost: Redis 7 (a client in the container, and one
// on the host over one TCP connection), MariaDB (an insert loop), OpenSSH
// (a logged-in session whose shell runs a loop, from the host), cron (a
// job's output file), nginx, and a Python web service sandboxed by
// systemd (PrivateTmp=, ProtectSystem=, PrivateDevices=, PrivateUsers=).
// The host's clients keep their connections over every operation but the
// restore of the snapshot, which takes the container back to before
// them. Where root lacks CAP_SYS_RESOURCE (this VM), PostgreSQL is
// installed too and check must refuse it, naming its unit; it is then
// stopped, and Redis and MariaDB run as root. A unit that sets
// PrivateUsers= again (as a container not from the template has it) is
// refused by check, which names the unit and the fix.
//
// The post-copy move comes last: after one, CRIU cannot checkpoint a
// Debian container again where both hosts share a kernel (docs/cluster.md,
// Post-copy).
func TestDebianServices(t *testing.T) {
	t0 := time.Now()
	a, b := twoHosts(t)
	// Privileged: only a privileged container's PostgreSQL (tasks of user
	// postgres) is refused where root lacks CAP_SYS_RESOURCE; an
	// unprivileged one's tasks are checkpointed there.
	a.MustSh("echo 'create svc --template debian --privileged' > ctl")
	ip := a.startDebian("svc")
	key := a.setUpServices("svc")
	t.Logf("set up in %.0f s", time.Since(t0).Seconds())

	if !hostCanCheckpointOtherUsers() {
		postgresRefused(t, a, "svc")
	}
	privateUsersRefused(t, a, "svc")
	// The Python service keeps the sandboxing CRIU can restore.
	if out, _ := a.attach("svc", "systemctl", "show", "ctrfs-pycount", "-p", "PrivateTmp", "-p", "ProtectSystem", "-p", "PrivateUsers"); !strings.Contains(out, "PrivateTmp=yes") || !strings.Contains(out, "ProtectSystem=strict") || !strings.Contains(out, "PrivateUsers=no") {
		t.Errorf("ctrfs-pycount's sandboxing:\n%s", out)
	}

	a.startInsideClients("svc")
	inside := a.insideAcked("svc", "before the first operation")
	redis := redisClientOn(t, ip, "host")
	ssh := startSSHShell(t, ip, key)
	py := pyPost(t, ip, 0, "before the first operation")
	cronPid, _ := a.attach("svc", "pidof", "cron")

	// Each operation, then every client goes on past what it had.
	var hostAcked, tick int
	step := func(d *Peer, when string, sameConnections bool) {
		t.Helper()
		d.insideGoOn("svc", inside, when)
		inside = d.insideAcked("svc", when)
		if sameConnections {
			hostAcked = redis.goesOn(t, hostAcked, when)
			tick = ssh.goesOn(t, tick, when)
		}
		py = pyPost(t, ip, py, when)
		if line := httpStatus(t, ip); !strings.Contains(line, " 200 ") {
			t.Errorf("nginx %s: %q", when, line)
		}
		d.systemRunning("svc")
	}
	hostAcked, _ = redis.last()
	tick = ssh.last()

	t1 := time.Now()
	a.MustSh("echo stop-stateful > containers/svc/ctl")
	a.WantStatus("containers/svc", "STOPPED", "after stop-stateful")
	a.MustSh("echo start > containers/svc/ctl")
	step(a, "over stop-stateful and start", true)
	afterFirst := time.Now().Unix()
	t.Logf("stop-stateful and start: %.1f s", time.Since(t1).Seconds())

	// A snapshot's restore takes the processes back to the snapshot,
	// connections too: the host's clients stop before it and come again.
	t1 = time.Now()
	redis.close()
	atSnapshot, _ := redis.last()
	pyAtSnapshot := py
	a.MustSh("echo 'snapshot s1 --stateful' > containers/svc/ctl")
	a.MustSh("echo 'restore s1' > containers/svc/ctl")
	if n, err := dialRedis(t, ip).command("GET", "host"); err != nil || n < atSnapshot {
		t.Fatalf("after restore s1 redis holds %d (%v) for the host's client, which had %d acknowledged before the snapshot", n, err, atSnapshot)
	}
	if n, err := pyCount(ip, false); err != nil || n < pyAtSnapshot {
		t.Fatalf("after restore s1 the Python service counts %d (%v), %d acknowledged before the snapshot", n, err, pyAtSnapshot)
	}
	step(a, "over snapshot --stateful and restore", false)
	redis = redisClientOn(t, ip, "host")
	hostAcked = redis.goesOn(t, 0, "after restore s1")
	ssh = startSSHShell(t, ip, key)
	tick = ssh.last()
	t.Logf("snapshot --stateful and restore: %.1f s", time.Since(t1).Seconds())

	t1 = time.Now()
	a.MustSh("mv containers/svc hosts/tollana/")
	wantMoved(t, "svc", a, b, "after the live move")
	step(b, "over the live move", true)
	t.Logf("live move: %.1f s (downtime %s s)", time.Since(t1).Seconds(), b.Info("svc")["downtime-seconds"])

	t1 = time.Now()
	b.MustSh("echo 'move dakara --post-copy' > containers/svc/ctl")
	wantMoved(t, "svc", b, a, "after the post-copy move")
	step(a, "over the post-copy move", true)
	t.Logf("post-copy move: %.1f s (downtime %s s)", time.Since(t1).Seconds(), a.Info("svc")["downtime-seconds"])

	// cron is the process it was (restored, not started again), and its
	// job ran after the first restore.
	if pid, _ := a.attach("svc", "pidof", "cron"); pid != cronPid {
		t.Errorf("cron was PID %s and is %s: started again, not restored", cronPid, pid)
	}
	waitLong(t, "cron's job to run after the first restore", 90*time.Second, func() bool {
		out, _ := a.attach("svc", "cat", "/root/cron.out")
		for _, l := range strings.Fields(out) {
			if n, err := strconv.ParseInt(l, 10, 64); err == nil && n >= afterFirst {
				return true
			}
		}
		return false
	})
	t.Logf("whole test: %.0f s", time.Since(t0).Seconds())
}

// pyPost makes the Python service count one more and checks that it
// counts on from what it had acknowledged (before); it returns the new
// count.
func pyPost(t *testing.T, ip string, before int, when string) int {
	t.Helper()
	var n int
	var err error
	waitLong(t, "the Python service to answer "+when, time.Minute, func() bool {
		n, err = pyCount(ip, true)
		return err == nil
	})
	if n <= before {
		t.Fatalf("the Python service counts %d %s; it had acknowledged %d", n, when, before)
	}
	return n
}

// postgresRefused: where root lacks CAP_SYS_RESOURCE, PostgreSQL (tasks
// of user postgres) cannot be checkpointed: check says so, naming its
// unit, and the container runs on; PostgreSQL is then stopped.
func postgresRefused(t *testing.T, d *Peer, name string) {
	t.Helper()
	if out, err := d.attach(name, "systemctl", "is-active", "postgresql@15-main"); err != nil {
		t.Fatalf("PostgreSQL is not running: %v: %s", err, out)
	}
	msg := checkRefuses(t, d, name, "postgres", "postgresql@15-main.service", "CAP_SYS_RESOURCE")
	if out, err := d.attach(name, "systemctl", "disable", "--now", "postgresql"); err != nil {
		t.Fatalf("stop PostgreSQL: %v: %s", err, out)
	}
	t.Logf("check refused PostgreSQL: %s", msg)
}

// privateUsersRefused: a unit that sets PrivateUsers= again (as in a
// container not made from the template, whose drop-in turns it off) is
// refused by check, which names the unit and the setting that fixes it;
// the setting is then taken back.
func privateUsersRefused(t *testing.T, d *Peer, name string) {
	t.Helper()
	dropIn := "/etc/systemd/system/ctrfs-pycount.service.d/private-users.conf"
	script := "mkdir -p ${f%/*} && printf '[Service]\\nPrivateUsers=yes\\n' > $f && systemctl daemon-reload && systemctl restart ctrfs-pycount"
	if out, err := d.attach(name, "sh", "-c", "f="+dropIn+"; "+script); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// systemctl restart returns once the service is forked, maybe before
	// its user namespace is made: until then check's dump fails on
	// whatever is in flight (systemd's notifications: "skqueue: Control
	// messages in queue"), not on the namespace.
	inOwnUserns := `p=$(systemctl show -p MainPID --value ctrfs-pycount) && [ "$p" -gt 0 ] && [ "$(readlink /proc/$p/ns/user)" != "$(readlink /proc/1/ns/user)" ]`
	waitFor(t, "ctrfs-pycount in a user namespace of its own", func() bool {
		_, err := d.attach(name, "sh", "-c", inOwnUserns)
		return err == nil
	})
	msg := checkRefuses(t, d, name, "user namespace", "ctrfs-pycount.service", "PrivateUsers=no")
	if out, err := d.attach(name, "sh", "-c", "rm "+dropIn+" && systemctl daemon-reload && systemctl restart ctrfs-pycount"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("check refused PrivateUsers=yes: %s", msg)
}

// checkRefuses runs check, which must fail (EOPNOTSUPP) with an error
// that names each of wants, and leave the container running; it returns
// the error.
func checkRefuses(t *testing.T, d *Peer, name string, wants ...string) string {
	t.Helper()
	d.ShFails("echo check > containers/"+name+"/ctl", "not supported")
	msg := d.Read("containers", name, "error")
	for _, want := range wants {
		if !strings.Contains(msg, want) {
			t.Errorf("check's error does not name %q:\n%s", want, msg)
		}
	}
	d.WantStatus("containers/"+name, "RUNNING", "after check")
	return msg
}
