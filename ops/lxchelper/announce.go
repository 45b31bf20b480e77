package lxchelper

import (
	"fmt"
	"os/exec"
	"strings"

	lxc "github.com/lxc/go-lxc"
)

// busyboxPath is the host's static BusyBox (busybox-static), which sends
// the ARP: see announce.
const busyboxPath = "/bin/busybox"

// announce sends a gratuitous ARP for each of the container's IPv4
// addresses, so that bridges and switches learn where its MAC address is
// now: after a migration, or after the source takes a container back from
// a target whose copy had already appeared on the network. The host's own
// static BusyBox sends it from inside the container's network namespace:
// the container's rootfs need not have an arping (a Debian one has not).
func announce(c *lxc.Container) error {
	addrs, err := c.IPv4Addresses()
	if err != nil {
		return err
	}
	pid := c.InitPid()
	if pid <= 0 {
		return fmt.Errorf("%s is not running", c.Name())
	}
	var errs []string
	for _, addr := range addrs {
		cmd := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", pid),
			busyboxPath, "arping", "-U", "-c", "1", "-I", "eth0", addr)
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v: %s", addr, err, strings.TrimSpace(string(out))))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("arping %s", strings.Join(errs, "; "))
	}
	return nil
}
