//go:build vmtest

package vmtest

// One segment, one network (issue 20, item 5), on two hosts that are not
// network namespaces of one kernel: the VMs' ctrfsbr0 bridges share the
// bed's container segment (vmtbr1). tests/network_test.go checks the same
// with three daemons in `make test`; here the hosts are real machines with
// machine-ids of their own, ARP and the bridges' forwarding between them.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"ctrfs/ops/network"
)

// The bed's container subnet (scripts/vmtest/common.sh VMTEST_SUBNET) and
// its gateway, which every host's bridge answers for (docs/network.md).
const (
	bedSubnet  = "10.214.0.0/16"
	bedGateway = "10.214.0.1"
)

// InContainer runs a command in a container of v (lxc-attach).
func (v *VM) InContainer(name, cmd string) (string, error) {
	return v.Run(fmt.Sprintf("lxc-attach -P /var/lib/lxc -n %s -- sh -c '%s'", name, cmd))
}

// bridge is v's ctrfsbr0 MAC and the IPv4 addresses of its gateway link
// (ctrfsbr0-gw, one end of the veth pair whose other end is a port of the
// bridge: ops/network/gateway.go).
func (v *VM) bridge(t *testing.T) (mac string, addrs []string) {
	t.Helper()
	out, err := v.Run("cat /sys/class/net/ctrfsbr0/address && ip -4 -o addr show dev ctrfsbr0-gw")
	if err != nil {
		t.Fatalf("%s: ctrfsbr0: %v: %s", v.Name, err, out)
	}
	lines := strings.SplitN(out, "\n", 2)
	for _, m := range regexp.MustCompile(`inet ([0-9.]+)/`).FindAllStringSubmatch(out, -1) {
		addrs = append(addrs, m[1])
	}
	return strings.TrimSpace(lines[0]), addrs
}

// TestNetwork: bridge MACs differ between the hosts (each made its own
// machine-id at first boot from the one image); containers created on
// both hosts at once get addresses no other container of the cluster
// has; a container reaches one on the other host and the gateway, whose
// ARP answer is the cluster's one gateway MAC whichever host answers; a
// moved container keeps its address, reaches the same from its new
// host, and its address is not handed out again by the host it left.
func TestNetwork(t *testing.T) {
	gwMAC := network.GatewayMAC(bedSubnet).String()
	macA, addrsA := vmA.bridge(t)
	macB, addrsB := vmB.bridge(t)
	t.Logf("ctrfsbr0: %s %s %v, %s %s %v", vmA.Name, macA, addrsA, vmB.Name, macB, addrsB)
	if macA == macB {
		t.Errorf("both hosts' bridges have the MAC %s", macA)
	}
	for _, b := range []struct {
		v     *VM
		addrs []string
	}{{vmA, addrsA}, {vmB, addrsB}} {
		if !slices.Contains(b.addrs, bedGateway) {
			t.Errorf("%s's ctrfsbr0-gw does not carry the gateway %s: %v", b.v.Name, bedGateway, b.addrs)
		}
	}

	// Two containers on each host, created at once.
	names := map[*VM][]string{vmA: {"na1", "na2"}, vmB: {"nb1", "nb2"}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for v, ns := range names {
		removeAfter(t, ns...)
		for _, n := range ns {
			wg.Add(1)
			go func(v *VM, n string) {
				defer wg.Done()
				if out, err := v.Sh("mkdir containers/" + n); err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("create %s on %s: %v: %s", n, v.Name, err, out))
					mu.Unlock()
				}
			}(v, n)
		}
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatal(strings.Join(failed, "\n"))
	}
	addrs := bedAddresses(t)
	t.Logf("addresses: %v", addrs)

	for _, c := range []struct {
		v    *VM
		name string
	}{{vmA, "na1"}, {vmB, "nb1"}} {
		c.v.MustCtl(t, c.name, "start")
		Count(t, addrs[c.name]) // reached from this host, on the segment
	}
	bedReaches(t, vmA, "na1", addrs["nb1"], gwMAC, "from "+vmA.Name)
	bedReaches(t, vmB, "nb1", addrs["na1"], gwMAC, "from "+vmB.Name)

	moved := addrs["na1"]
	move(t, "na1", moved, vmA, vmB, false)
	if got := vmB.Info("na1")["ipv4"]; got != moved {
		t.Fatalf("na1 moved to %s with address %q, had %s", vmB.Name, got, moved)
	}
	bedReaches(t, vmB, "na1", addrs["nb1"], gwMAC, "after the move to "+vmB.Name)

	// The host it left must not hand its address out again.
	removeAfter(t, "na3")
	vmA.MustSh(t, "mkdir containers/na3")
	after := bedAddresses(t)
	if after["na3"] == moved {
		t.Errorf("%s gave na3 the address %s of na1, which moved to %s", vmA.Name, moved, vmB.Name)
	}
}

// bedAddresses maps each container on the two hosts to its IPv4 address
// (info's ipv4), failing the test if two share one.
func bedAddresses(t *testing.T) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	holder := map[string]string{}
	for _, v := range []*VM{vmA, vmB} {
		// Directories only: containers/hosts is a link to ../hosts.
		out := v.MustSh(t, "find containers/ -mindepth 1 -maxdepth 1 -type d -printf '%f\\n'")
		for _, n := range strings.Fields(out) {
			a := v.Info(n)["ipv4"]
			if a == "" {
				t.Fatalf("%s on %s has no ipv4 in info", n, v.Name)
			}
			if other, ok := holder[a]; ok {
				t.Errorf("%s on %s and %s share the address %s", n, v.Name, other, a)
			}
			holder[a] = n + " on " + v.Name
			addrs[n] = a
		}
	}
	return addrs
}

// bedReaches checks that a container pings one on the other host and the
// gateway, and that only the cluster's gateway MAC answers its ARP for
// the gateway (whichever host's bridge answers, it is that one MAC).
func bedReaches(t *testing.T, v *VM, name, far, gwMAC, when string) {
	t.Helper()
	for _, ip := range []string{far, bedGateway} {
		if out, err := v.InContainer(name, "ping -c 2 -W 5 "+ip); err != nil {
			t.Fatalf("%s: %s cannot ping %s: %v\n%s", when, name, ip, err, out)
		}
	}
	out, _ := v.InContainer(name, "arping -w 3 -I eth0 "+bedGateway)
	var replies []string
	for _, m := range regexp.MustCompile(`(?i)reply from \S+ \[([0-9a-f:]+)\]`).FindAllStringSubmatch(out, -1) {
		replies = append(replies, strings.ToLower(m[1]))
	}
	slices.Sort(replies)
	if len(slices.Compact(replies)) != 1 || replies[0] != gwMAC {
		t.Fatalf("%s: the gateway %s answered %s's ARP from %v, want %s alone:\n%s", when, bedGateway, name, replies, gwMAC, out)
	}
}
