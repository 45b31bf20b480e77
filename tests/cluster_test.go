package tests

import (
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ctrfs/internal/tree"
)

// Cluster tests: peers (harness_peers_test.go) join and leave, and
// containers move between them, whole or cut short at each step.

// TestClusterMembership: hosts/ follows peers joining, leaving and dying;
// a host with another secret never shows; hosts/PEER shows its info and
// containers.
func TestClusterMembership(t *testing.T) {
	secret, other := newSecret(t), newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr)
	c := startPeer(t, "abydos", loopback(4), other, a.Addr)
	a.waitHosts("dakara", "tollana")
	b.waitHosts("dakara", "tollana")

	info := tree.ParseKV(a.Read("hosts/tollana/info"))
	for _, k := range []string{"arch", "kernel", "criu", "lxc", "cpu-features", "endpoint"} {
		if info[k] == "" {
			t.Errorf("hosts/tollana/info lacks %s:\n%v", k, info)
		}
	}
	if info["status"] != "alive" || !strings.HasPrefix(info["address"], loopback(3)+":") {
		t.Errorf("hosts/tollana/info: %v", info)
	}
	// The full list of CPU features, which gossip carries only as a
	// digest, comes from the peer.
	if f := strings.Fields(info["cpu-features"]); len(f) < 5 || info["cpu-features"] == "unknown" {
		t.Errorf("hosts/tollana/info cpu-features: %q", info["cpu-features"])
	}

	// The migration endpoint talks only to a peer with the secret.
	probe := func(secret string) (string, error) {
		out, err := exec.Command(ctrfsBin, "probe", "--secret-file", secretFile(t, secret, 0o600), info["endpoint"]).CombinedOutput()
		return string(out), err
	}
	if out, err := probe(other); err == nil || !strings.Contains(out, "secret") {
		t.Errorf("the endpoint answered a peer with another secret: %v: %s", err, out)
	}
	if out, err := probe(secret); err != nil || !strings.Contains(out, "host: tollana") {
		t.Errorf("the endpoint refused a peer with the secret: %v: %s", err, out)
	}

	b.MustSh("mkdir containers/c9")
	if ls := strings.Fields(a.MustSh("ls hosts/tollana")); !contains(ls, "c9") || !contains(ls, "info") {
		t.Errorf("hosts/tollana lists %v", ls)
	}
	a.WantStatus("hosts/tollana/c9", "STOPPED", "a stopped container of the peer")
	if tree.ParseKV(a.Read("hosts/tollana/c9/info"))["name"] != "c9" {
		t.Errorf("hosts/tollana/c9/info is not c9's")
	}
	a.ShFails("cat hosts/tollana/nothere/status", "No such file or directory")

	// The host with the wrong secret never joins.
	time.Sleep(2 * time.Second)
	if h := c.hosts(); strings.Join(h, " ") != "abydos" {
		t.Errorf("a host with another secret sees %v", h)
	}
	if h := a.hosts(); contains(h, "abydos") {
		t.Errorf("a host with another secret joined: %v", h)
	}

	// Leaving, coming back, dying.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	a.waitHosts("dakara")
	b.Start()
	a.waitHosts("dakara", "tollana")
	b.Kill()
	waitLong(t, "the killed host to disappear or show dead", 30*time.Second, func() bool {
		if !contains(a.hosts(), "tollana") {
			return true
		}
		out, _ := a.Sh("cat hosts/tollana/info")
		return tree.ParseKV(out)["status"] == "dead"
	})
	b.Start() // for cleanup through its mount
	b.MustSh("rmdir containers/c9")
}

// TestLiveMigration: mv of a running container to a peer keeps its IP and
// its count; pull brings it back; a stopped one moves cold with its files,
// saved state and snapshots.
func TestLiveMigration(t *testing.T) {
	a, b := twoHosts(t)

	ip := a.CreateRunning("c1")
	a.MustSh("echo 'snapshot s1 --stateful' > containers/c1/ctl")
	time.Sleep(time.Second)
	events := a.readEvents()
	before := Count(t, ip)

	a.MustSh("mv containers/c1 hosts/tollana/")
	wantMoved(t, "c1", a, b, "after the move")
	after := Count(t, ip)
	if after < before {
		t.Fatalf("count went from %d to %d: the processes did not move", before, after)
	}
	info := b.Info("c1")
	if info["ipv4"] != ip || info["last-op"] != "receive" || info["move-mode"] != "live" || info["downtime-seconds"] == "" {
		t.Errorf("info on the target:\n%v", info)
	}
	t.Logf("live move: %s s, downtime %s s, %s bytes sent", info["move-seconds"], info["downtime-seconds"], info["move-sent-bytes"])
	events.waitFor(t, "dakara c1 move ok")
	events.waitFor(t, "dakara c1 move-downtime ok")
	if ls := strings.Fields(b.MustSh("ls containers/c1/snapshots")); strings.Join(ls, " ") != "s1" {
		t.Errorf("snapshots on the target: %v", ls)
	}
	if ls := strings.Fields(a.MustSh("ls hosts/tollana")); !contains(ls, "c1") {
		t.Errorf("hosts/tollana on the source lists %v", ls)
	}
	// The source's own node for c1 went under hosts/tollana/ with the mv;
	// what is read there now is the peer's container.
	a.WantStatus("hosts/tollana/c1", "RUNNING", "the container seen from the source after the move")
	if frozen := info["precopy-frozen-seconds"]; frozen == "" {
		t.Errorf("info on the target lacks precopy-frozen-seconds:\n%v", info)
	}
	// The target unpacked the precopy ahead, wrote only what the final
	// dump changed, and restored lazily from there.
	for _, k := range []string{"target-prepare-state-seconds", "target-update-seconds", "target-criu-restore-seconds", "target-lazy-wait-seconds"} {
		if info[k] == "" {
			t.Errorf("info on the target lacks %s (no lazy restore from the precopy unpacked ahead):\n%v", k, info)
		}
	}
	if _, err := strconv.ParseInt(info["target-update-bytes"], 10, 64); err != nil {
		t.Errorf("info on the target: target-update-bytes %q:\n%v", info["target-update-bytes"], info)
	}

	// Pull it back, then push it from inside containers/.
	a.MustSh("mv hosts/tollana/c1 containers/")
	wantMoved(t, "c1", b, a, "after the pull")
	pulled := Count(t, ip)
	if pulled < after {
		t.Fatalf("count went from %d to %d over the pull", after, pulled)
	}
	a.MustSh("cd containers && mv c1 hosts/tollana/")
	b.WantStatus("containers/c1", "RUNNING", "after the move from inside containers/")

	// Cold: stopped with saved state, and a file in the rootfs.
	if err := os.WriteFile(b.rootfs("c1", "root", "travels"), []byte("yes"), 0o644); err != nil {
		t.Fatal(err)
	}
	last := Count(t, ip)
	b.MustSh("echo stop-stateful > containers/c1/ctl")
	b.MustSh("echo 'move dakara' > containers/c1/ctl")
	a.WantStatus("containers/c1", "STOPPED", "after a cold move")
	if info := a.Info("c1"); info["stateful"] != "yes" {
		t.Fatalf("after a cold move: info %v", info)
	}
	if b, err := os.ReadFile(a.rootfs("c1", "root", "travels")); err != nil || string(b) != "yes" {
		t.Errorf("a file of the rootfs did not travel: %q %v", b, err)
	}
	if a.Info("c1")["move-mode"] != "cold" {
		t.Errorf("move-mode: %v", a.Info("c1"))
	}
	a.MustSh("echo start > containers/c1/ctl")
	countFrom(t, ip, last, "over stop-stateful, cold move and start")
	a.MustSh("echo 'restore s1' > containers/c1/ctl")
	Count(t, ip)
	a.MustSh("echo stop > containers/c1/ctl")
}

// TestMigrationRefused: an unknown host, a taken name and a target that
// cannot restore what this host dumps are refused before anything moves; a
// restore that fails on the target leaves the container running here.
func TestMigrationRefused(t *testing.T) {
	secret := newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr, fakeCRIU(t, "", true))
	c := startPeer(t, "abydos", loopback(4), secret, a.Addr, fakeCRIU(t, "3.0", false))
	a.waitHosts("abydos", "dakara", "tollana")
	ip := a.CreateRunning("c1")

	a.ShFails("echo 'move nohost' > containers/c1/ctl", "No such file or directory")
	a.ShFails("mv containers/c1 hosts/nohost/", "No such file or directory")

	b.MustSh("mkdir containers/c1")
	a.ShFails("echo 'move tollana' > containers/c1/ctl", "File exists")
	b.MustSh("rmdir containers/c1")

	a.ShFails("echo 'move abydos' > containers/c1/ctl", "Operation not supported")
	if e := a.Read("containers/c1/error"); !strings.Contains(e, "CRIU") {
		t.Errorf("error of an incompatible target: %q", e)
	}
	if c.has("c1") {
		t.Error("the incompatible target got the container")
	}

	before := Count(t, ip)
	a.ShFails("mv containers/c1 hosts/tollana/", "Input/output error")
	if e := a.Read("containers/c1/error"); !strings.Contains(e, "RUNNING here") {
		t.Errorf("error of a failed restore on the target: %q", e)
	}
	stillHere(t, a, b, ip, before)
	a.MustSh("echo stop > containers/c1/ctl")
}

// TestMigrationPostCopyUnsupported: to a host where CRIU cannot do lazy
// pages (moves.LazyPages finds out by doing one; here a criu that fails
// them), a post-copy move is refused with EOPNOTSUPP before anything
// moves, its error quoting CRIU, and the container runs on here.
func TestMigrationPostCopyUnsupported(t *testing.T) {
	secret := newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr, noLazyCRIU(t))
	a.waitHosts("dakara", "tollana")
	ip := a.CreateRunning("c1")
	before := Count(t, ip)

	a.ShFails("echo 'move tollana --post-copy' > containers/c1/ctl", "Operation not supported")
	if e := a.Read("containers/c1/error"); !strings.Contains(e, "post-copy") || !strings.Contains(e, "lazy pages") {
		t.Errorf("error of a refused post-copy move: %q", e)
	}
	stillHere(t, a, b, ip, before)
	a.MustSh("echo stop > containers/c1/ctl")
}

// fillRootfs puts mib MiB of random bytes in the container's rootfs, so
// that moving it takes long enough to be interrupted.
func (d *Daemon) fillRootfs(name string, mib int) {
	d.t.Helper()
	f, err := os.Create(d.rootfs(name, "root", "ballast"))
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, int64(mib)<<20); err != nil {
		d.t.Fatal(err)
	}
}

// moveUntilChunksArrive starts moving c1 from a to b in the background and
// returns once chunks are arriving on b.
func moveUntilChunksArrive(t *testing.T, a, b *Peer) *backgroundMove {
	t.Helper()
	stderr := filepath.Join(t.TempDir(), "stderr")
	move := &backgroundMove{a.Background("{ echo 'move tollana' > containers/c1/ctl; } 2>" + stderr), stderr}
	start := b.chunkCount()
	waitLong(t, "chunks to arrive on the target", 60*time.Second, func() bool { return b.chunkCount() > start+20 })
	return move
}

// bigContainer makes c1 running on a with 256 MiB of ballast in its rootfs,
// so that moving it takes long enough to be interrupted; it returns its
// address and count.
func bigContainer(t *testing.T, a *Peer) (ip string, count int) {
	t.Helper()
	ip = a.CreateRunning("c1")
	a.fillRootfs("c1", 256)
	return ip, Count(t, ip)
}

// chunkCount counts the chunks in a daemon's store.
func (d *Daemon) chunkCount() int { return len(d.chunks()) }

// TestMigrationTargetKilled: the target dies during the transfer, then
// during the handover; the container keeps running on the source, the
// target's copy never runs, and a later move succeeds. The source waits
// out the target's lease (and the install's slack) before it restores the
// container: shortened on both hosts (15 s and 30 s on a host in use).
func TestMigrationTargetKilled(t *testing.T) {
	lease := []string{"CTRFS_TEST_COMMIT_LEASE=5s", "CTRFS_TEST_INSTALL_SLACK=5s"}
	a, b := twoHostsWith(t, lease, lease)
	ip, before := bigContainer(t, a)

	move := moveUntilChunksArrive(t, a, b)
	b.Kill()
	if err := move.Wait(); err == nil {
		t.Fatal("the move succeeded although the target died")
	}
	if e := move.Stderr(); !strings.Contains(e, "No route to host") {
		t.Errorf("a move whose target died: %q; want EHOSTUNREACH", e)
	}
	stillHere(t, a, b, ip, before)
	b.Start()
	if b.has("c1") {
		t.Fatal("the restarted target has a copy of c1")
	}
	a.waitHosts("dakara", "tollana")

	// Killed during the handover, once it has created the container and
	// may be restoring it: its copy must never run beside the source's,
	// which the source restores once the target's lease is over.
	before = Count(t, ip)
	move.Cmd = a.Background("echo 'move tollana' > containers/c1/ctl")
	waitLong(t, "the target to create the container", 90*time.Second, func() bool { return b.has("c1") })
	b.Kill()
	if err := move.Wait(); err == nil {
		t.Fatal("the move succeeded although the target died before the commit")
	}
	a.WantStatus("containers/c1", "RUNNING", "on the source after the target died in the handover")
	out, _ := exec.Command("lxc-info", "-P", b.LXCPath, "-n", "c1", "-sH").CombinedOutput()
	if strings.TrimSpace(string(out)) == "RUNNING" {
		t.Fatal("the dead target's copy of c1 runs beside the source's")
	}
	t.Logf("the dead target's copy is %q; error: %s", strings.TrimSpace(string(out)), a.Read("containers/c1/error"))
	before = countFrom(t, ip, before, "over the move the target died in")
	b.Start()
	if b.has("c1") {
		t.Fatal("the restarted target kept its uncommitted copy of c1")
	}
	a.waitHosts("dakara", "tollana")
	a.MustSh("echo 'move tollana' > containers/c1/ctl")
	wantMoved(t, "c1", a, b, "after the second move")
	countFrom(t, ip, before, "over the move after the target came back")
	b.MustSh("echo stop > containers/c1/ctl")
}

// TestMigrationSourceKilled: the source daemon dies during the transfer,
// and again during the handover; on its restart it settles with the target
// and the container runs on exactly one host.
func TestMigrationSourceKilled(t *testing.T) {
	a, b := twoHosts(t)
	ip, _ := bigContainer(t, a)

	runningOnce := func(when string, before int) (onA bool) {
		t.Helper()
		var statusA, statusB string
		waitLong(t, "the container to run on exactly one host "+when, 60*time.Second, func() bool {
			statusA, statusB = "", ""
			if a.has("c1") {
				statusA, _ = a.Sh("cat containers/c1/status")
			}
			if b.has("c1") {
				statusB, _ = b.Sh("cat containers/c1/status")
			}
			ra, rb := strings.TrimSpace(statusA) == "RUNNING", strings.TrimSpace(statusB) == "RUNNING"
			return ra != rb && (!a.has("c1") || !b.has("c1"))
		})
		countFrom(t, ip, before, when)
		return a.has("c1")
	}

	// During the transfer: the move cannot have finished.
	before := Count(t, ip)
	move := moveUntilChunksArrive(t, a, b)
	a.Kill()
	move.Wait()
	a.Start()
	a.waitHosts("dakara", "tollana")
	if !runningOnce("after the source died during the transfer", before) {
		t.Fatal("the container moved although the source died before the handover")
	}

	// During the handover: the container is checkpointed here and being
	// restored there; either side may end up with it. (The target unpacks
	// the rootfs into .c1.creating already during the precopy.)
	before = Count(t, ip)
	events := a.readEvents()
	move.Cmd = a.Background("echo 'move tollana' > containers/c1/ctl")
	waitLong(t, "the handover", 90*time.Second, func() bool {
		return strings.Contains(events.Text(), "c1 move-handover started") || b.has("c1")
	})
	a.Kill()
	move.Wait()
	a.Start()
	onA := runningOnce("after the source died during the handover", before)
	t.Logf("after the source died during the handover, c1 runs on %s", map[bool]string{true: "the source", false: "the target"}[onA])
}

// TestMigrationConnectionCut: the connection to the target is cut during
// the transfer; the container keeps running on the source, the target
// frees the name, and the move succeeds once the network is back.
func TestMigrationConnectionCut(t *testing.T) {
	a, b := twoHosts(t)
	ip, before := bigContainer(t, a)
	endpoint := tree.ParseKV(a.Read("hosts/tollana/info"))["endpoint"]
	_, port, _ := strings.Cut(endpoint, ":")
	rule := []string{"OUTPUT", "-p", "tcp", "-d", loopback(3), "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset"}
	uncut := func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() }
	t.Cleanup(uncut)

	move := moveUntilChunksArrive(t, a, b)
	if out, err := exec.Command("iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	if err := move.Wait(); err == nil {
		t.Fatal("the move succeeded through a cut connection")
	}
	if e := move.Stderr(); !strings.Contains(e, "No route to host") {
		t.Errorf("a move through a cut connection: %q; want EHOSTUNREACH", e)
	}
	stillHere(t, a, b, ip, before)

	uncut()
	waitLong(t, "the move to succeed with the network back", 40*time.Second, func() bool {
		_, err := a.Sh("echo 'move tollana' > containers/c1/ctl")
		return err == nil
	})
	wantMoved(t, "c1", a, b, "after the move")
	Count(t, ip)
	b.MustSh("echo stop > containers/c1/ctl")
}
