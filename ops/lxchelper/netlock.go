package lxchelper

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// UnlockNetwork removes what CRIU's network lock (iptables, its default
// method) put in the network namespace of pid: the CRIU chain and the
// INPUT and OUTPUT rules that jump to it, for IPv4 and IPv6
// (criu/net.c iptables_network_lock_internal). A namespace without them
// is left as it is.
func UnlockNetwork(pid int) error {
	netns := fmt.Sprintf("--net=/proc/%d/ns/net", pid)
	var errs []string
	for _, tool := range []string{"iptables", "ip6tables"} {
		run := func(args ...string) ([]byte, error) {
			return exec.Command("nsenter", append([]string{netns, tool, "-w"}, args...)...).CombinedOutput()
		}
		if _, err := run("-n", "-L", "CRIU"); err != nil {
			continue // no lock
		}
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			for i := 0; i < 8; i++ {
				if _, err := run("-D", chain, "-j", "CRIU"); err != nil {
					break
				}
			}
		}
		for _, args := range [][]string{{"-F", "CRIU"}, {"-X", "CRIU"}} {
			if out, err := run(args...); err != nil {
				errs = append(errs, fmt.Sprintf("%s %s: %v: %s", tool, strings.Join(args, " "), err, bytes.TrimSpace(out)))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
