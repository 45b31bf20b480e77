package network

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// The gateway is anycast: every host of a cluster answers the subnet's
// first address with one MAC (GatewayMAC), each for its own containers
// only, so that a container moved to another host keeps a valid ARP entry
// for its gateway and is routed by the host it runs on from its first
// packet. The address sits not on the bridge, whose MAC must be the
// host's own (BridgeMAC), but on one end of a veth pair whose other end
// is a port of the bridge. Three things keep the hosts on one segment
// from seeing each other's gateway:
//
//   - a static, sticky fdb entry sends frames for the gateway MAC to this
//     host's gateway port, never to the segment, and is not moved by a
//     frame from that MAC arriving from the segment;
//   - an ebtables rule drops frames from the gateway MAC forwarded to a
//     port that is not a container's (LXC names those veth*): this host's
//     ARP answers, and its ARP requests, stay off the segment;
//   - another drops frames from the gateway MAC that come in through
//     anything but this host's gateway port.
//
// Hence a bridge's uplink to the segment must not be named veth*. And the
// bridge itself must not answer ARP for the gateway address, which Linux
// does by default for any of its addresses (arp_ignore), with its own MAC.

// containerPorts matches the host ends of containers' veths, as LXC names
// them.
const containerPorts = "veth+"

// gatewayLinks are the names of the veth pair: the end that holds the
// gateway address, and the bridge's port.
func gatewayLinks(bridge string) (gw, port string) {
	if len(bridge)+3 <= 15 { // IFNAMSIZ less its NUL
		return bridge + "-gw", bridge + "-gp"
	}
	sum := sha256.Sum256([]byte(bridge))
	return fmt.Sprintf("cgw%x", sum[:4]), fmt.Sprintf("cgp%x", sum[:4])
}

// ensureGateway makes or repairs the gateway of n's bridge. Idempotent.
func (n Network) ensureGateway() error {
	gw, port := gatewayLinks(n.Bridge)
	addr := fmt.Sprintf("%s/%d", n.Gateway(), n.Subnet.Bits())
	mac := GatewayMAC(n.Subnet.Masked().String())
	// ctrfs before the anycast gateway put the address on the bridge.
	if hasAddr(n.Bridge, addr) {
		if err := ip("take the gateway address off "+n.Bridge, "addr", "del", addr, "dev", n.Bridge); err != nil {
			return err
		}
	}
	if _, err := net.InterfaceByName(gw); err != nil {
		if out, err := exec.Command("ip", "link", "add", gw, "type", "veth", "peer", "name", port).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("File exists")) {
			return fmt.Errorf("create the gateway of %s: %s", n.Bridge, bytes.TrimSpace(out))
		}
	}
	if err := setMAC(gw, mac); err != nil {
		return err
	}
	// Linux answers ARP for any of the host's addresses on any link: the
	// bridge would answer for the gateway with its own MAC, to the
	// containers and to the segment. It answers only for its own
	// addresses (it has none) from now on.
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+n.Bridge+"/arp_ignore", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("keep bridge %s from answering for the gateway: %w", n.Bridge, err)
	}
	steps := [][]string{
		{"link", "set", port, "master", n.Bridge},
		{"link", "set", port, "up"},
		{"link", "set", gw, "up"},
	}
	for _, s := range steps {
		if err := ip("gateway of "+n.Bridge, s...); err != nil {
			return err
		}
	}
	if !hasAddr(gw, addr) {
		if out, err := exec.Command("ip", "addr", "add", addr, "dev", gw).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("File exists")) {
			return fmt.Errorf("address the gateway of %s: %s", n.Bridge, bytes.TrimSpace(out))
		}
	}
	if out, err := exec.Command("bridge", "fdb", "replace", mac.String(), "dev", port, "master", "static", "sticky").CombinedOutput(); err != nil {
		return fmt.Errorf("pin the gateway's MAC to %s: %s", port, bytes.TrimSpace(out))
	}
	return ensureGatewayFilter(n.Bridge, port, mac)
}

// ensureGatewayFilter adds the two ebtables rules (see above) unless they
// are there. They name no bridge (--logical-in needs the kernel's
// nft_meta_bridge, which not every kernel has): the gateway MAC is this
// subnet's alone, its port this bridge's.
func ensureGatewayFilter(bridge, port string, mac net.HardwareAddr) error {
	for _, r := range gatewayRules(port, mac) {
		if exec.Command("ebtables", append([]string{"-t", "filter", "--check"}, r...)...).Run() == nil {
			continue
		}
		if out, err := exec.Command("ebtables", append([]string{"-t", "filter", "-A"}, r...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("keep the gateway of %s off the segment (ebtables %s): %s", bridge, strings.Join(r, " "), bytes.TrimSpace(out))
		}
	}
	return nil
}

func gatewayRules(port string, mac net.HardwareAddr) [][]string {
	return [][]string{
		{"FORWARD", "-s", mac.String(), "-o", "!", containerPorts, "-j", "DROP"},
		{"FORWARD", "-s", mac.String(), "-i", "!", port, "-j", "DROP"},
	}
}

// RemoveGateway removes what ensureGateway made beside the bridge (the
// veth pair, and with it the fdb entry, and the ebtables rules), for
// whoever removes the bridge: deleting a bridge leaves its ports.
func (n Network) RemoveGateway() {
	gw, port := gatewayLinks(n.Bridge)
	exec.Command("ip", "link", "del", gw).Run()
	for _, r := range gatewayRules(port, GatewayMAC(n.Subnet.Masked().String())) {
		exec.Command("ebtables", append([]string{"-t", "filter", "-D"}, r...)...).Run()
	}
}

// intact says, from netlink alone, whether the bridge and the gateway are
// up with their MACs and the gateway holds its address.
func (n Network) intact() bool {
	gw, _ := gatewayLinks(n.Bridge)
	br, err1 := net.InterfaceByName(n.Bridge)
	g, err2 := net.InterfaceByName(gw)
	if err1 != nil || err2 != nil || br.Flags&net.FlagUp == 0 || g.Flags&net.FlagUp == 0 ||
		!bytes.Equal(g.HardwareAddr, GatewayMAC(n.Subnet.Masked().String())) {
		return false
	}
	if mac, err := BridgeMAC(n.Host, n.Bridge, machineIDFile); err != nil || !bytes.Equal(br.HardwareAddr, mac) {
		return false
	}
	addrs, err := g.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(n.Gateway().AsSlice()) {
			return true
		}
	}
	return false
}

// hasAddr says whether link holds addr (address/bits).
func hasAddr(link, addr string) bool {
	out, err := exec.Command("ip", "-o", "addr", "show", "dev", link).CombinedOutput()
	return err == nil && bytes.Contains(out, []byte(" "+addr+" "))
}

// ip runs an ip(8) command; what says what it was for.
func ip(what string, args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: ip %s: %s", what, strings.Join(args, " "), bytes.TrimSpace(out))
	}
	return nil
}
