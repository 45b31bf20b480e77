package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"ctrfs/cluster"
)

// probe is `ctrfs probe --secret-file FILE ENDPOINT`: it connects to a
// host's migration endpoint as a migration would, so that an operator can
// tell a wrong secret or a closed port from a host that cannot take a
// container, and prints what the host says of itself.
func probe(args []string) int {
	fl := flag.NewFlagSet("probe", flag.ContinueOnError)
	secretFile := fl.String("secret-file", "", "the cluster's shared secret (required)")
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: ctrfs probe --secret-file FILE HOST:PORT\n\n"+
			"Connects to a ctrfs migration endpoint (hosts/PEER/info: endpoint) with the\n"+
			"secret, as a migration would, and prints the host's facts.\n\nflags:\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *secretFile == "" || fl.NArg() != 1 {
		fl.Usage()
		return 2
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
