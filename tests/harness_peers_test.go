package tests

// Peers: daemons in one cluster, gossiping on loopback addresses of the
// run's lane (127.0.LANE.HOST) with a secret of their own, and what the
// tests of moves between them check.

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// nextPort is the last gossip port given out; each peer takes two (gossip
// and its migration endpoint), from the lane's first.
var nextPort atomic.Int32

func init() { nextPort.Store(int32(7960 + 200*testLane)) }

// Peer is a daemon in a cluster, with its gossip address.
type Peer struct {
	*Daemon
	Addr string
}

// newSecret is a cluster secret as an operator makes one: 32 random bytes.
func newSecret(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// secretFile writes secret to a file of the given mode (whatever the umask).
func secretFile(t *testing.T, secret string, mode os.FileMode) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
	return file
}

// startPeer starts a daemon that gossips on ip with secret, joining join
// (if not empty); env is added to its environment.
func startPeer(t *testing.T, name, ip, secret, join string, env ...string) *Peer {
	t.Helper()
	p := newPeer(t, name, ip, secret, join)
	p.Env = env
	p.Start()
	return p
}

// newPeer prepares startPeer's daemon without starting it.
func newPeer(t *testing.T, name, ip, secret, join string) *Peer {
	t.Helper()
	return newPeerOn(t, name, ip, secret, join, "")
}

// newPeerOn is newPeer with its LXC path in lxcPath if that is not
// empty (newDaemonOn).
func newPeerOn(t *testing.T, name, ip, secret, join, lxcPath string) *Peer {
	t.Helper()
	addr := fmt.Sprintf("%s:%d", ip, nextPort.Add(2))
	args := []string{"--bind", addr, "--secret-file", secretFile(t, secret, 0o600)}
	if join != "" {
		args = append(args, "--join", join)
	}
	return &Peer{Daemon: newDaemonOn(t, name, lxcPath, args...), Addr: addr}
}

// hosts lists hosts/ of the daemon's mount, sorted.
func (d *Daemon) hosts() []string {
	out, _ := d.Sh("ls hosts")
	hosts := strings.Fields(out)
	sort.Strings(hosts)
	return hosts
}

// waitHosts waits until hosts/ lists exactly want: the peers have seen
// each other join (or leave).
func (d *Daemon) waitHosts(want ...string) {
	d.t.Helper()
	sort.Strings(want)
	waitLong(d.t, fmt.Sprintf("hosts/ of %s to be %v", d.Name, want), 20*time.Second, func() bool {
		return strings.Join(d.hosts(), " ") == strings.Join(want, " ")
	})
}

// has says whether the container is on this host, as LXC sees it: its
// config on the daemon's LXC path.
func (d *Daemon) has(name string) bool {
	return exists(filepath.Join(d.LXCPath, name, "config"))
}

// twoHosts starts dakara and tollana in one cluster.
func twoHosts(t *testing.T) (a, b *Peer) {
	t.Helper()
	return twoHostsEnv(t)
}

// twoHostsEnv is twoHosts with env added to the source's environment.
func twoHostsEnv(t *testing.T, env ...string) (a, b *Peer) {
	t.Helper()
	return twoHostsWith(t, env, nil)
}

// twoHostsTargetEnv is twoHosts with env added to the target's environment.
func twoHostsTargetEnv(t *testing.T, env ...string) (a, b *Peer) {
	t.Helper()
	return twoHostsWith(t, nil, env)
}

// twoHostsWith is twoHosts with sourceEnv added to the source's (dakara's)
// environment and targetEnv to the target's (tollana's).
func twoHostsWith(t *testing.T, sourceEnv, targetEnv []string) (a, b *Peer) {
	t.Helper()
	secret := newSecret(t)
	a = startPeer(t, "dakara", loopback(2), secret, "", sourceEnv...)
	b = startPeer(t, "tollana", loopback(3), secret, a.Addr, targetEnv...)
	a.waitHosts("dakara", "tollana")
	return a, b
}

// stillHere checks that a move that failed left c1 running on a with its
// count, and no copy on b.
func stillHere(t *testing.T, a, b *Peer, ip string, before int) {
	t.Helper()
	a.WantStatus("containers/c1", "RUNNING", "on the source after the failed move")
	countFrom(t, ip, before, "over the failed move")
	if b.has("c1") {
		t.Fatal("the target has a copy of c1")
	}
	t.Logf("error: %s", a.Read("containers/c1/error"))
}

// wantMoved fails the test unless the container runs on to and is gone
// from from: where a move leaves it.
func wantMoved(t *testing.T, name string, from, to *Peer, when string) {
	t.Helper()
	to.WantStatus("containers/"+name, "RUNNING", when)
	if from.has(name) {
		t.Fatalf("%s: %s is still on %s", when, name, from.Name)
	}
}

// backgroundMove is a move under way in a shell, whose stderr (the errno
// as the shell words it) is kept.
type backgroundMove struct {
	*exec.Cmd
	stderr string // file
}

// Stderr is what the shell said of the move so far.
func (m *backgroundMove) Stderr() string {
	b, _ := os.ReadFile(m.stderr)
	return string(b)
}
