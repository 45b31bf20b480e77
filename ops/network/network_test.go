package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func testNetwork(subnet string) Network {
	return Network{Bridge: "ctrfsbr0", Subnet: netip.MustParsePrefix(subnet)}
}

// writeConfig puts a fake container config at lxcpath/name/config.
func writeConfig(t *testing.T, lxcpath, name, content string) {
	t.Helper()
	dir := filepath.Join(lxcpath, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reserved reports whether a is the network, gateway or broadcast address of p.
func reserved(p netip.Prefix, a netip.Addr) bool {
	p = p.Masked()
	network := p.Addr()
	gateway := network.Next()
	b := network.As4()
	hostBits := 32 - p.Bits()
	for i := 0; i < hostBits; i++ {
		b[3-i/8] |= 1 << (i % 8)
	}
	broadcast := netip.AddrFrom4(b)
	return a == network || a == gateway || a == broadcast
}

func TestGateway(t *testing.T) {
	tests := []struct{ subnet, want string }{
		{"10.0.3.0/24", "10.0.3.1"},
		{"10.0.3.77/24", "10.0.3.1"}, // an unmasked subnet
		{"172.16.0.0/12", "172.16.0.1"},
		{"192.168.7.8/30", "192.168.7.9"},
	}
	for _, tt := range tests {
		if got := testNetwork(tt.subnet).Gateway(); got != netip.MustParseAddr(tt.want) {
			t.Errorf("Gateway of %s = %s, want %s", tt.subnet, got, tt.want)
		}
	}
}

func TestAllocateAddressDeterministicAndInRange(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "does-not-exist-yet") // a missing lxcpath is an empty one
	for _, subnet := range []string{"10.0.3.0/24", "10.200.0.0/16", "192.168.50.0/29", "192.168.50.4/30", "10.0.0.0/8", "10.9.8.7/24"} {
		n := testNetwork(subnet)
		for _, host := range []string{"dakara", "tollana"} {
			for i := 0; i < 50; i++ {
				name := fmt.Sprintf("c%d", i)
				a, err := n.AllocateAddress(empty, host, name)
				if err != nil {
					t.Fatalf("%s: AllocateAddress(%s, %s): %v", subnet, host, name, err)
				}
				if !a.Is4() || !n.Subnet.Masked().Contains(a) {
					t.Errorf("%s: %s/%s got %s, outside the subnet", subnet, host, name, a)
				}
				if reserved(n.Subnet, a) {
					t.Errorf("%s: %s/%s got %s, the network, gateway or broadcast address", subnet, host, name, a)
				}
				again, err := n.AllocateAddress(empty, host, name)
				if err != nil || again != a {
					t.Errorf("%s: %s/%s got %s then %s, %v", subnet, host, name, a, again, err)
				}
			}
		}
	}
}

// The first probe is a hash of host and name, so different containers (and
// the same name on different hosts) mostly get different addresses.
func TestAllocateAddressSpreads(t *testing.T) {
	n := testNetwork("10.0.3.0/24")
	lxcpath := t.TempDir()
	seen := map[netip.Addr]string{}
	for _, host := range []string{"dakara", "tollana"} {
		for i := 0; i < 10; i++ {
			name := fmt.Sprintf("c%d", i)
			a, err := n.AllocateAddress(lxcpath, host, name)
			if err != nil {
				t.Fatal(err)
			}
			seen[a] = host + "/" + name
		}
	}
	// 20 hashes into 253 slots: a handful of collisions at most.
	if len(seen) < 15 {
		t.Errorf("20 containers got only %d distinct addresses: %v", len(seen), seen)
	}
}

// In a /30 the only address that is neither network, gateway nor broadcast
// is the third one.
func TestAllocateAddressSlash30(t *testing.T) {
	n := testNetwork("192.168.7.8/30")
	lxcpath := t.TempDir()
	for i := 0; i < 20; i++ {
		a, err := n.AllocateAddress(lxcpath, "h", fmt.Sprint(i))
		if err != nil || a != netip.MustParseAddr("192.168.7.10") {
			t.Fatalf("AllocateAddress in /30 = %s, %v; want 192.168.7.10", a, err)
		}
	}
	writeConfig(t, lxcpath, "only", "lxc.net.0.ipv4.address = 192.168.7.10/30\n")
	if a, err := n.AllocateAddress(lxcpath, "h", "second"); err == nil {
		t.Errorf("AllocateAddress in a full /30 = %s, want an error", a)
	}
}

func TestAllocateAddressBadSubnet(t *testing.T) {
	lxcpath := t.TempDir()
	for _, subnet := range []string{"10.0.0.0/31", "10.0.0.1/32", "10.0.0.0/7", "0.0.0.0/0", "fd00::/64", "::ffff:10.0.0.0/120"} {
		if a, err := testNetwork(subnet).AllocateAddress(lxcpath, "h", "c1"); err == nil {
			t.Errorf("AllocateAddress in %s = %s, want an error", subnet, a)
		}
	}
	if a, err := (Network{Bridge: "br"}).AllocateAddress(lxcpath, "h", "c1"); err == nil {
		t.Errorf("AllocateAddress with no subnet = %s, want an error", a)
	}
}

func TestAllocateAddressAvoidsUsed(t *testing.T) {
	n := testNetwork("10.0.3.0/24")
	lxcpath := t.TempDir()
	first, err := n.AllocateAddress(lxcpath, "dakara", "c2")
	if err != nil {
		t.Fatal(err)
	}
	// Another container already holds the address c2 would get.
	writeConfig(t, lxcpath, "c1", fmt.Sprintf("lxc.uts.name = c1\nlxc.net.0.ipv4.address = %s/24\n", first))
	second, err := n.AllocateAddress(lxcpath, "dakara", "c2")
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatalf("AllocateAddress returned %s, which c1 uses", second)
	}
	if !n.Subnet.Contains(second) || reserved(n.Subnet, second) {
		t.Fatalf("AllocateAddress returned %s", second)
	}
	// It walks on from the first probe: the next address, unless that one
	// is reserved (then it wraps past the broadcast, network and gateway).
	want := first.Next()
	for reserved(n.Subnet, want) || !n.Subnet.Contains(want) {
		if !n.Subnet.Contains(want) {
			want = n.Subnet.Addr()
		} else {
			want = want.Next()
		}
	}
	if second != want {
		t.Errorf("after %s is taken, AllocateAddress = %s, want %s", first, second, want)
	}
}

// The forms of the address line that usedAddresses understands.
func TestAllocateAddressConfigForms(t *testing.T) {
	n := testNetwork("10.0.3.0/24")
	tests := []struct {
		what, line string
		counts     bool
	}{
		{"with prefix length", "lxc.net.0.ipv4.address = %s/24", true},
		{"without prefix length", "lxc.net.0.ipv4.address = %s", true},
		{"no spaces", "lxc.net.0.ipv4.address=%s/24", true},
		{"extra spaces", "  lxc.net.0.ipv4.address   =   %s/24   ", true},
		{"second interface", "lxc.net.1.ipv4.address = %s/24", true},
		{"gateway is not an address in use", "lxc.net.0.ipv4.gateway = %s", false},
		{"ipv6 key", "lxc.net.0.ipv6.address = %s", false},
		{"no equals sign", "lxc.net.0.ipv4.address %s/24", false},
		{"garbage value", "lxc.net.0.ipv4.address = %s/999", false},
	}
	for _, tt := range tests {
		lxcpath := t.TempDir()
		first, err := n.AllocateAddress(lxcpath, "dakara", "new")
		if err != nil {
			t.Fatal(err)
		}
		writeConfig(t, lxcpath, "old", "lxc.uts.name = old\n"+fmt.Sprintf(tt.line, first)+"\nlxc.net.0.hwaddr = 00:16:3e:00:00:01\n")
		got, err := n.AllocateAddress(lxcpath, "dakara", "new")
		if err != nil {
			t.Fatalf("%s: %v", tt.what, err)
		}
		if taken := got != first; taken != tt.counts {
			t.Errorf("%s (%q): address counted as used = %v, want %v", tt.what, fmt.Sprintf(tt.line, first), taken, tt.counts)
		}
	}
}

// Only NAME/config files count; other entries of the LXC path are ignored.
func TestAllocateAddressIgnoresOtherEntries(t *testing.T) {
	n := testNetwork("10.0.3.0/24")
	lxcpath := t.TempDir()
	first, err := n.AllocateAddress(lxcpath, "dakara", "new")
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("lxc.net.0.ipv4.address = %s/24\n", first)
	// A plain file in the LXC path, a directory without a config, and the
	// address in a file that is not called config.
	if err := os.WriteFile(filepath.Join(lxcpath, "notes"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(lxcpath, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(lxcpath, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lxcpath, "other", "config.bak"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := n.AllocateAddress(lxcpath, "dakara", "new"); err != nil || got != first {
		t.Errorf("AllocateAddress = %s, %v; want %s (nothing real uses it)", got, err, first)
	}
	// A container being created (hidden, still under its temporary name)
	// does hold its address.
	writeConfig(t, lxcpath, ".other.creating", line)
	if got, err := n.AllocateAddress(lxcpath, "dakara", "new"); err != nil || got == first {
		t.Errorf("AllocateAddress = %s, %v; %s is taken by a container being created", got, err, first)
	}
}

func TestAllocateAddressFillsSubnet(t *testing.T) {
	n := testNetwork("192.168.50.0/29") // .2 .. .6 are usable
	lxcpath := t.TempDir()
	got := map[netip.Addr]bool{}
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("c%d", i)
		a, err := n.AllocateAddress(lxcpath, "dakara", name)
		if err != nil {
			t.Fatalf("container %d of 5: %v", i, err)
		}
		if got[a] {
			t.Fatalf("%s handed out twice", a)
		}
		got[a] = true
		writeConfig(t, lxcpath, name, fmt.Sprintf("lxc.net.0.ipv4.address = %s/29\n", a))
	}
	for i := 2; i <= 6; i++ {
		if a := netip.AddrFrom4([4]byte{192, 168, 50, byte(i)}); !got[a] {
			t.Errorf("%s was never handed out", a)
		}
	}
	if a, err := n.AllocateAddress(lxcpath, "dakara", "one-too-many"); err == nil {
		t.Errorf("AllocateAddress in a full subnet = %s, want an error", a)
	}
}

func TestAllocateAddressUnreadableLXCPath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if a, err := testNetwork("10.0.3.0/24").AllocateAddress(file, "h", "c1"); err == nil {
		t.Errorf("AllocateAddress with a file as LXC path = %s, want an error", a)
	}
}

var macRE = regexp.MustCompile(`^00:16:3e:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`)

func TestMACAddress(t *testing.T) {
	seen := map[string]string{}
	for _, host := range []string{"dakara", "tollana", "abydos"} {
		for i := 0; i < 30; i++ {
			name := fmt.Sprintf("c%d", i)
			mac := MACAddress(host, name)
			if !macRE.MatchString(mac) {
				t.Errorf("MACAddress(%s, %s) = %q, not in 00:16:3e:xx:xx:xx", host, name, mac)
			}
			hw, err := net.ParseMAC(mac)
			if err != nil || len(hw) != 6 {
				t.Errorf("MACAddress(%s, %s) = %q: %v", host, name, mac, err)
				continue
			}
			if hw[0]&1 != 0 {
				t.Errorf("MACAddress(%s, %s) = %q is a multicast address", host, name, mac)
			}
			if again := MACAddress(host, name); again != mac {
				t.Errorf("MACAddress(%s, %s) = %q then %q", host, name, mac, again)
			}
			if prev, dup := seen[mac]; dup {
				t.Errorf("MACAddress(%s, %s) = %q, the same as %s", host, name, mac, prev)
			}
			seen[mac] = host + "/" + name
		}
	}
	if strings.EqualFold(MACAddress("dakara", "c1"), MACAddress("tollana", "c1")) {
		t.Error("the same name on two hosts gets the same MAC")
	}
}

func TestBridgeMAC(t *testing.T) {
	id := filepath.Join(t.TempDir(), "machine-id")
	os.WriteFile(id, []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	a, err := BridgeMAC("dakara", "ctrfsbr0", id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := BridgeMAC("tollana", "ctrfsbr0", id)
	again, _ := BridgeMAC("dakara", "ctrfsbr0", id)
	if a.String() == b.String() {
		t.Errorf("two hosts of one machine-id share the bridge MAC %s", a)
	}
	if a.String() != again.String() {
		t.Errorf("BridgeMAC changed: %s then %s", a, again)
	}
	if a[0]&1 != 0 || a[0]&2 == 0 {
		t.Errorf("BridgeMAC %s is not a locally administered unicast MAC", a)
	}
	if _, err := BridgeMAC("dakara", "ctrfsbr0", filepath.Join(t.TempDir(), "none")); err != nil {
		t.Errorf("without a machine-id: %v", err)
	}
}

func TestGatewayMAC(t *testing.T) {
	a, b := GatewayMAC("10.87.0.0/16"), GatewayMAC("10.88.0.0/16")
	if a.String() == b.String() || a.String() != GatewayMAC("10.87.0.0/16").String() {
		t.Errorf("GatewayMAC: %s, %s", a, b)
	}
	if a[0]&1 != 0 || a[0]&2 == 0 {
		t.Errorf("GatewayMAC %s is not a locally administered unicast MAC", a)
	}
}

func TestGatewayLinks(t *testing.T) {
	for _, br := range []string{"ctrfsbr0", "br", "a-fifteen-chars"} {
		gw, port := gatewayLinks(br)
		if len(gw) > 15 || len(port) > 15 || gw == port || strings.HasPrefix(port, "veth") {
			t.Errorf("gatewayLinks(%s) = %s, %s", br, gw, port)
		}
	}
}

func TestAllocateAddressWithAsks(t *testing.T) {
	n := testNetwork("10.0.3.0/29")
	lxcpath := t.TempDir()
	var asked []netip.Addr
	a, err := n.AllocateAddressWith(lxcpath, "h", "c1", func(a netip.Addr) (bool, error) {
		asked = append(asked, a)
		return len(asked) == 3, nil
	})
	if err != nil || len(asked) != 3 || a != asked[2] {
		t.Fatalf("AllocateAddressWith = %s, %v after asking %v", a, err, asked)
	}
	if _, err := n.AllocateAddressWith(lxcpath, "h", "c1", func(netip.Addr) (bool, error) { return false, nil }); err == nil {
		t.Error("every address refused: no error")
	}
	want := fmt.Errorf("no answer")
	if _, err := n.AllocateAddressWith(lxcpath, "h", "c1", func(netip.Addr) (bool, error) { return false, want }); err != want {
		t.Errorf("a failed claim: %v, want %v", err, want)
	}
}
