package tests

// A segment: daemons each in a network namespace of its own, their
// bridges joined to one L2 segment, as hosts on one LAN are. The test
// makes every namespace, veth and bridge (their names carry the lane) and
// removes them. A daemon in a namespace runs through nsenter(1) into it
// and unshare(1) into a mount namespace of its own, where /sys is a
// sysfs of its network namespace, showing its links (LXC looks there for
// the bridge); its directory is a shared bind mount, as
// for Cgroup2Only, so that its FUSE mount propagates back here.

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"ctrfs/internal/testenv"
)

// segment is a bridge in a namespace of its own that the hosts' bridges
// (and their gossip links) are ports of.
type segment struct {
	t  *testing.T
	ns string
	br string
}

// newSegment makes the segment; cleanup removes it, and with it the
// hosts' namespaces made by addHost (their cleanup runs after the
// daemons').
func newSegment(t *testing.T) *segment {
	t.Helper()
	for _, tool := range []string{"nsenter", "unshare", "ebtables"} {
		testenv.NeedTool(t, tool, "util-linux and iptables have it")
	}
	s := &segment{t: t, ns: fmt.Sprintf("ctrfs%dseg", testLane), br: fmt.Sprintf("seg%d", testLane)}
	exec.Command("ip", "netns", "del", s.ns).Run() // a run killed before its cleanup
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.ns).Run() })
	s.run("ip", "netns", "add", s.ns)
	for _, br := range []string{s.br, s.gossipBridge()} {
		s.run("ip", "-n", s.ns, "link", "add", br, "type", "bridge")
		s.run("ip", "-n", s.ns, "link", "set", br, "up")
	}
	return s
}

// gossipBridge joins the hosts' gossip links: a network apart from the
// containers', as an operator's is. (A host's NIC on the containers'
// segment would answer ARP for the gateway address too, unless its
// arp_ignore is set: docs/cluster.md.)
func (s *segment) gossipBridge() string { return fmt.Sprintf("mgmt%d", testLane) }

func (s *segment) run(args ...string) {
	s.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		s.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// gossipIP is host i's address on the segment, for gossip and moves.
func gossipIP(i int) string { return fmt.Sprintf("192.168.%d.%d", 200+testLane, i) }

// addHost makes host i's namespace, with testBridge already in it and an
// uplink port of it on the segment, and a link on the gossip network, and
// prepares a peer daemon there (started by Start), with extra flags.
func (s *segment) addHost(i int, name, secret, join string, extra ...string) *Peer {
	s.t.Helper()
	ns := fmt.Sprintf("ctrfs%dh%d", testLane, i)
	exec.Command("ip", "netns", "del", ns).Run()
	s.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	s.run("ip", "netns", "add", ns)
	s.run("ip", "-n", ns, "link", "set", "lo", "up")
	// The uplink is named apart from LXC's veth*: the gateway filter
	// keeps the gateway's frames off any other port.
	up, seg := fmt.Sprintf("up%dh%d", testLane, i), fmt.Sprintf("su%dh%d", testLane, i)
	gl, gseg := fmt.Sprintf("gl%dh%d", testLane, i), fmt.Sprintf("sg%dh%d", testLane, i)
	for _, pair := range [][3]string{{up, seg, s.br}, {gl, gseg, s.gossipBridge()}} {
		s.run("ip", "-n", ns, "link", "add", pair[0], "type", "veth", "peer", "name", pair[1], "netns", s.ns)
		s.run("ip", "-n", s.ns, "link", "set", pair[1], "master", pair[2], "up")
		s.run("ip", "-n", ns, "link", "set", pair[0], "up")
	}
	s.run("ip", "-n", ns, "link", "add", testBridge, "type", "bridge")
	s.run("ip", "-n", ns, "link", "set", up, "master", testBridge)
	s.run("ip", "-n", ns, "addr", "add", gossipIP(i)+"/24", "dev", gl)
	p := newPeer(s.t, name, gossipIP(i), secret, join)
	p.netns = ns
	p.args = append(p.args, extra...)
	return p
}

// netnsScript runs in the daemon's new mount namespace, with its command
// line as arguments: a sysfs of the daemon's network namespace replaces
// /sys (LXC looks for the bridge in its class/net), the mounts below the
// old one (cgroups, fusectl, ...) bound again on its empty mount points
// through a descriptor of the old one. Not overmounts of class/net and
// devices/virtual/net: an unprivileged container may mount a sysfs only
// if one is fully visible, no mount on a directory that is not empty
// (the kernel's mount_too_revealing), and LXC's start then failed with
// EPERM ("Failed to mount sysfs"). /sys is made a slave first, so that
// none of it reaches the host on a host whose mounts are shared.
const netnsScript = `set -e
mount --make-rslave /sys
exec 3</sys
subs=
for m in fs/cgroup fs/fuse/connections fs/bpf fs/pstore kernel/security kernel/debug kernel/tracing kernel/config; do
	if mountpoint -q /sys/$m; then subs="$subs $m"; fi
done
mount -t sysfs sysfs /sys
for m in $subs; do
	mount --no-canonicalize --rbind /proc/self/fd/3/$m /sys/$m
done
exec 3<&-
exec "$@"`

// netnsCommand is the daemon's command line run in its namespaces;
// nsenter, unshare and sh exec, so its pid is the daemon's.
func (d *Daemon) netnsCommand(bin string) *exec.Cmd {
	d.t.Helper()
	d.shareBase()
	args := append([]string{"--net=/run/netns/" + d.netns, "--", "unshare", "-m", "--propagation", "unchanged", "--",
		"sh", "-c", netnsScript, "sh", bin}, d.args...)
	return exec.Command("nsenter", args...)
}

// inNetns is a command run in the daemon's network namespace (LXC's
// commands reach a container's monitor through an abstract socket, which
// is the namespace's), or here if it has none.
func (d *Daemon) inNetns(args ...string) *exec.Cmd {
	if d.netns == "" {
		return exec.Command(args[0], args[1:]...)
	}
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + d.netns, "--"}, args...)...)
}

// inContainer runs a shell command in the container, returning its output
// and error.
func (d *Daemon) inContainer(name, script string) (string, error) {
	out, err := d.inNetns("lxc-attach", "-P", d.LXCPath, "-n", name, "--", "/bin/sh", "-c", script).CombinedOutput()
	return string(out), err
}

// linkMAC is the MAC of a link in the daemon's network namespace.
func (d *Daemon) linkMAC(link string) string {
	d.t.Helper()
	out, err := d.inNetns("ip", "-o", "link", "show", link).CombinedOutput()
	if err != nil {
		d.t.Fatalf("link %s: %v: %s", link, err, out)
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "link/ether" && i+1 < len(f) {
			return f[i+1]
		}
	}
	d.t.Fatalf("link %s: no MAC in %q", link, out)
	return ""
}
