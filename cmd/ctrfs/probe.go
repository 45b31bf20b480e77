package main

import (
	"fmt"
	"os"
	"strings"

	"ctrfs/cluster"
)

// probe is `ctrfs probe --secret-file FILE ENDPOINT`: it connects to a
// host's migration endpoint as a migration would, so that an operator can
// tell a wrong secret or a closed port from a host that cannot take a
// container, and prints what the host says of itself.
const probeHead = `usage: ctrfs probe --secret-file FILE HOST:PORT

Connects to a ctrfs migration endpoint (hosts/PEER/info: endpoint) with the
secret, as a migration would, and prints the host's facts.
`

func probe(args []string) int {
	fl := newFlagSet("probe")
	secretFile := fl.String("secret-file", "", "read the cluster's shared secret from `FILE` (required)")
	check := func(rest []string) error {
		if *secretFile == "" {
			return fmt.Errorf("--secret-file is required")
		}
		if len(rest) != 1 {
			return fmt.Errorf("needs one HOST:PORT, got %d arguments", len(rest))
		}
		return nil
	}
	if code, stop := parseFlags(fl, probeHead, args, check); stop {
		return code
	}
	secret, err := readSecret(*secretFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs probe:", err)
		return 2
	}
	f, err := cluster.Probe(fl.Arg(0), secret)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs probe:", err)
		return 1
	}
	fmt.Printf("host: %s\nendpoint: %s\narch: %s\nkernel: %s\ncriu: %s\nlxc: %s\ncpu-features: %s\n",
		f.Host, f.Endpoint, f.Arch, f.Kernel, f.CRIU, f.LXC, strings.Join(f.CPUFlags, " "))
	return 0
}
