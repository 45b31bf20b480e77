package tests

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ctrfs/ops/network"
)

// TestSegmentNetwork: three hosts whose bridges share one segment are one
// network (issue 20, item 5). Containers created at once on all three get
// distinct addresses; a container pings one on another host and the
// gateway, which answers once, with the one MAC every host gives it; a
// container moved to another host keeps its address, its gateway's MAC
// and its reach; with a host down, creates after the move, filling the
// subnet, never hand out the moved container's address, nor the down
// host's, nor any other twice; the bridges' MACs differ although the
// three share a machine-id.
func TestSegmentNetwork(t *testing.T) {
	seg := newSegment(t)
	secret := newSecret(t)
	// Thirteen addresses for containers (.2 to .14): few enough that
	// hosts choosing alone would meet.
	subnet := netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/28", 89+testLane))
	gw := subnet.Addr().Next().String()
	gwMAC := network.GatewayMAC(subnet.String()).String()
	names := []string{"abydos", "chulak", "edora"}
	var hosts []*Peer
	for i, n := range names {
		join := ""
		if i > 0 {
			join = hosts[0].Addr
		}
		p := seg.addHost(i+1, n, secret, join, "--subnet", subnet.String())
		p.Start()
		hosts = append(hosts, p)
	}
	for _, h := range hosts {
		h.waitHosts(names...)
	}
	h1, h2, h3 := hosts[0], hosts[1], hosts[2]

	macs := map[string]string{}
	for _, h := range hosts {
		mac := h.linkMAC(testBridge)
		if other, ok := macs[mac]; ok {
			t.Errorf("the bridges of %s and %s share the MAC %s (one machine-id)", other, h.Name, mac)
		}
		macs[mac] = h.Name
	}

	// Three containers on each host, all created at once.
	var wg sync.WaitGroup
	for i, h := range hosts {
		for _, c := range []string{"a", "b", "c"} {
			wg.Add(1)
			go func(h *Peer, name string) {
				defer wg.Done()
				if _, err := h.Sh("mkdir containers/" + name); err != nil {
					t.Errorf("create on %s: %v", h.Name, err)
				}
			}(h, fmt.Sprintf("x%d%s", i+1, c))
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	addrs := clusterAddresses(t, hosts)
	t.Logf("addresses: %v", addrs)

	for _, run := range []struct {
		h    *Peer
		name string
	}{{h1, "x1a"}, {h3, "x3a"}} {
		run.h.MustSh("echo start > containers/" + run.name + "/ctl")
		run.h.WantStatus("containers/"+run.name, "RUNNING", "after start")
	}
	moved, far := addrs["abydos/x1a"], addrs["edora/x3a"]
	reaches(t, h1, "x1a", far, gw, gwMAC, "from abydos")

	h1.MustSh("mv containers/x1a hosts/chulak/")
	wantMoved(t, "x1a", h1, h2, "after the move")
	if got := configAddress(t, h2, "x1a"); got != moved {
		t.Fatalf("x1a moved to chulak with address %s, had %s", got, moved)
	}
	reaches(t, h2, "x1a", far, gw, gwMAC, "after the move to chulak")

	// edora goes down (its containers run on). Creates on the old host
	// and the new one until the subnet is full may fail while gossip
	// has edora alive or suspect (EHOSTUNREACH), then go on without it;
	// none may take the moved container's address, or edora's.
	h3.Kill()
	for _, h := range []*Peer{h1, h2} {
		wg.Add(1)
		go func(h *Peer) {
			defer wg.Done()
			deadline := time.Now().Add(90 * time.Second)
			for i := 0; i < 12 && time.Now().Before(deadline); {
				_, err := h.Sh(fmt.Sprintf("mkdir containers/y%s%d", h.Name[:1], i))
				switch {
				case err == nil:
					i++
				case strings.Contains(err.Error(), "No route to host"):
					t.Logf("create on %s while edora is not dead yet: %v", h.Name, err)
					time.Sleep(time.Second) // until gossip has edora dead
				default:
					t.Logf("create on %s stopped: %v", h.Name, err)
					return
				}
			}
		}(h)
	}
	wg.Wait()
	addrs = clusterAddresses(t, hosts)
	t.Logf("addresses after the move: %v", addrs)
	if len(addrs) != 13 {
		t.Errorf("%d containers in a subnet with room for 13", len(addrs))
	}
	for _, h := range []*Peer{h1, h2} {
		if e := h.Read("error"); !strings.Contains(e, "is full") {
			t.Errorf("error on %s after the last create: %q, want the subnet full", h.Name, e)
		}
	}
}

// reaches checks from container name on h that it pings far and the
// gateway, and that the gateway answers ARP once, with gwMAC.
func reaches(t *testing.T, h *Peer, name, far, gw, gwMAC, when string) {
	t.Helper()
	for _, ip := range []string{far, gw} {
		if out, err := h.inContainer(name, "ping -c 2 -W 5 "+ip); err != nil {
			t.Fatalf("%s: %s cannot ping %s: %v\n%s", when, name, ip, err, out)
		}
	}
	out, _ := h.inContainer(name, "arping -w 3 -I eth0 "+gw)
	var replies []string
	for _, m := range regexp.MustCompile(`(?i)reply from \S+ \[([0-9a-f:]+)\]`).FindAllStringSubmatch(out, -1) {
		replies = append(replies, strings.ToLower(m[1]))
	}
	slices.Sort(replies)
	if len(slices.Compact(replies)) != 1 || replies[0] != gwMAC {
		t.Fatalf("%s: the gateway %s answered %s's ARP from %v, want %s alone:\n%s", when, gw, name, replies, gwMAC, out)
	}
}

// clusterAddresses maps HOST/NAME to the address of every container on
// the hosts, failing the test if two share one.
func clusterAddresses(t *testing.T, hosts []*Peer) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	holder := map[string]string{}
	for _, h := range hosts {
		entries, err := os.ReadDir(h.LXCPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			key := h.Name + "/" + e.Name()
			a := configAddress(t, h, e.Name())
			if other, ok := holder[a]; ok {
				t.Errorf("%s and %s both have address %s", other, key, a)
			}
			holder[a], addrs[key] = key, a
		}
	}
	return addrs
}

// configAddress is the address in a container's config.
func configAddress(t *testing.T, h *Peer, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.LXCPath, name, "config"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^lxc\.net\.0\.ipv4\.address\s*=\s*([0-9.]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no address in the config of %s on %s", name, h.Name)
	}
	return string(m[1])
}
