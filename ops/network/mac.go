package network

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strings"
)

// machineIDFile is where the machine-id is read, for BridgeMAC.
var machineIDFile = "/etc/machine-id"

// BridgeMAC is the MAC of this host's bridge: a hash of the machine-id, the
// host's name and the bridge's name, stable across restarts. Left to the
// kernel and udev, a bridge's MAC comes from the machine-id alone, and
// hosts cloned from one image share it; their ctrfs names differ (the
// cluster refuses a second host of one name). A machine without a
// machine-id hashes the names alone.
func BridgeMAC(host, bridge, idFile string) (net.HardwareAddr, error) {
	id, err := os.ReadFile(idFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the machine-id: %w", err)
	}
	return localMAC("ctrfs bridge\x00" + strings.TrimSpace(string(id)) + "\x00" + host + "\x00" + bridge), nil
}

// GatewayMAC is the anycast gateway's MAC: the same on every host of a
// cluster, since they share the subnet (gateway.go says why), and
// another for another subnet.
func GatewayMAC(subnet string) net.HardwareAddr {
	return localMAC("ctrfs gateway\x00" + subnet)
}

// localMAC is a locally administered unicast MAC hashed from seed.
func localMAC(seed string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(seed))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac
}

// setMAC gives a link its MAC unless it has it already.
func setMAC(link string, mac net.HardwareAddr) error {
	if ifc, err := net.InterfaceByName(link); err == nil && bytes.Equal(ifc.HardwareAddr, mac) {
		return nil
	}
	if out, err := exec.Command("ip", "link", "set", link, "address", mac.String()).CombinedOutput(); err != nil {
		return fmt.Errorf("set the MAC of %s: %s", link, bytes.TrimSpace(out))
	}
	return nil
}
