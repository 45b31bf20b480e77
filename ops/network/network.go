// Package network attaches ctrfs's containers to the host: the bridge, with
// a MAC of this host's own (BridgeMAC), and the anycast gateway on it
// (EnsureBridge, gateway.go), a static address of its subnet for each new
// container (AllocateAddressWith, which reads the addresses the configs of
// an LXC path hold and lets the cluster have its say) and a fixed MAC
// (MACAddress), so that a checkpointed or moved container comes back with
// the same identity on the wire. It knows nothing of LXC beyond the address
// lines of a config.
package network

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Network is the bridge that ctrfs's containers are attached to. Each
// container gets a static address and a fixed MAC so that a checkpointed
// container comes back with the same identity on the wire.
type Network struct {
	Bridge string
	Subnet netip.Prefix // the gateway holds the first address, containers the rest
	// Host is this host's name: with the machine-id it makes the bridge's
	// MAC (BridgeMAC), which differs between hosts cloned from one image.
	Host string
}

func (n Network) Gateway() netip.Addr { return n.Subnet.Masked().Addr().Next() }

// ensured are the bridges EnsureBridge made whole in this process.
var ensured sync.Map

// EnsureBridge creates the bridge, with its own MAC, and the anycast
// gateway on it (gateway.go), or repairs what exists of them. Idempotent.
// Once it has in this process, a bridge whose links are up with their
// MACs and the gateway its address is taken as whole without running a
// command: a move's handover ensures it while the container is frozen.
// (Its fdb entry and filter rules are then made again only at the next
// start of the daemon.)
func (n Network) EnsureBridge() error {
	if _, ok := ensured.Load(n); ok && n.intact() {
		return nil
	}
	if err := n.ensureBridge(); err != nil {
		return err
	}
	ensured.Store(n, true)
	return nil
}

func (n Network) ensureBridge() error {
	if _, err := net.InterfaceByName(n.Bridge); err != nil {
		if out, err := exec.Command("ip", "link", "add", n.Bridge, "type", "bridge").CombinedOutput(); err != nil && !bytes.Contains(out, []byte("File exists")) {
			return fmt.Errorf("create bridge %s: %s", n.Bridge, bytes.TrimSpace(out))
		}
	}
	mac, err := BridgeMAC(n.Host, n.Bridge, machineIDFile)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if err := setMAC(n.Bridge, mac); err != nil {
		return err
	}
	if err := n.ensureGateway(); err != nil {
		return err
	}
	if out, err := exec.Command("ip", "link", "set", n.Bridge, "up").CombinedOutput(); err != nil {
		return fmt.Errorf("bring up bridge %s: %s", n.Bridge, bytes.TrimSpace(out))
	}
	return nil
}

// AllocateAddress picks a free address for a new container, as far as
// lxcpath tells: AllocateAddressWith with no one else to ask.
func (n Network) AllocateAddress(lxcpath, host, name string) (netip.Addr, error) {
	return n.AllocateAddressWith(lxcpath, host, name, nil)
}

// AllocateAddressWith picks a free address for a new container. The first
// probe is a hash of host and name, so that hosts creating at once rarely
// try the same one; then it walks on past addresses already configured in
// lxcpath. Each address free here is offered to free (the cluster's
// claim, when there is one), which takes it (true), refuses it (false: the
// walk goes on) or fails the allocation.
func (n Network) AllocateAddressWith(lxcpath, host, name string, free func(netip.Addr) (bool, error)) (netip.Addr, error) {
	used, err := UsedAddresses(lxcpath)
	if err != nil {
		return netip.Addr{}, err
	}
	prefix := n.Subnet.Masked()
	hostBits := 32 - prefix.Bits()
	if !prefix.Addr().Is4() || hostBits < 2 || hostBits > 24 {
		return netip.Addr{}, fmt.Errorf("subnet %s: need an IPv4 subnet between /8 and /30", prefix)
	}
	size := uint32(1) << hostBits
	base := binary.BigEndian.Uint32(prefix.Addr().AsSlice())
	sum := sha256.Sum256([]byte(host + "/" + name))
	start := binary.BigEndian.Uint32(sum[:4])
	for i := uint32(0); i < size; i++ {
		off := (start + i) % size
		if off < 2 || off == size-1 { // network, gateway, broadcast
			continue
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], base+off)
		a := netip.AddrFrom4(b)
		if used[a] {
			continue
		}
		if free == nil {
			return a, nil
		}
		ok, err := free(a)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("subnet %s is full", prefix)
}

// MACAddress derives a stable MAC in LXC's 00:16:3e range.
func MACAddress(host, name string) string {
	sum := sha256.Sum256([]byte("mac/" + host + "/" + name))
	return fmt.Sprintf("00:16:3e:%02x:%02x:%02x", sum[0], sum[1], sum[2])
}

// UsedAddresses reads the static addresses of every container in lxcpath,
// those being created (their hidden directories) included.
func UsedAddresses(lxcpath string) (map[netip.Addr]bool, error) {
	used := map[netip.Addr]bool{}
	entries, err := os.ReadDir(lxcpath)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(lxcpath, e.Name(), "config"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if !ok || !strings.HasSuffix(strings.TrimSpace(k), ".ipv4.address") {
				continue
			}
			if p, err := netip.ParsePrefix(strings.TrimSpace(v)); err == nil {
				used[p.Addr()] = true
			} else if a, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil {
				used[a] = true
			}
		}
		f.Close()
	}
	return used, nil
}
