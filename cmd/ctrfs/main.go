// Command ctrfs mounts the control filesystem over this host's LXC
// containers; see README.md, docs/ctrfs.8.md and docs/ctrfs.5.md.
package main

import (
	"fmt"
	"os"

	"ctrfs/ops/lazypages"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/rootfstar"
	"ctrfs/ops/storage"
)

const usage = `usage:
  ctrfs serve [flags]   mount the control tree and serve it until SIGINT/SIGTERM
  ctrfs probe --secret-file FILE HOST:PORT
                        check that a peer's migration endpoint answers and shares the secret
  ctrfs version         the versions of ctrfs, CRIU and LXC
  ctrfs help            this text; 'ctrfs serve --help' lists the flags
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "probe":
		os.Exit(probe(os.Args[2:]))
	case "version", "--version":
		os.Exit(versions(os.Args[2:]))
	case "lxc-helper": // internal: see ops.Config.HelperPath
		os.Exit(lxchelper.Main(os.Args[2:]))
	case "archive-rootfs": // internal: CRIU's hook during a stateful snapshot
		os.Exit(rootfstar.ArchiveMain(os.Args[2:]))
	case "snapshot-rootfs": // internal: the same, of a rootfs that is a btrfs subvolume
		os.Exit(storage.SnapshotMain(os.Args[2:]))
	case "lazy-probe-workload": // internal: the process that lazypages.Probe moves
		os.Exit(lazypages.ProbeWorkloadMain(os.Args[2:]))
	case "lazy-pages-watch": // internal: the watcher of a post-copy move's copy
		os.Exit(lazypages.WatchMain(os.Args[2:]))
	case "make-cgroups": // internal: CRIU's hook before a restore
		os.Exit(lxchelper.MakeCgroupsMain(os.Args[2:]))
	case "freeze-restored": // internal: CRIU's hook in a restore rehearsal
		os.Exit(lxchelper.FreezeRestoredMain(os.Args[2:]))
	case "help", "-h", "--help":
		if len(os.Args) > 2 {
			fmt.Fprintf(os.Stderr, "ctrfs help: unexpected argument %q\n\n%s", os.Args[2], usage)
			os.Exit(2)
		}
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "ctrfs: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
