// Command ctrfs-bench measures ctrfs against raw LXC and CRIU, in parts
// that run in this order (--only picks some), each in a file of its own
// and printing a table:
//
//	stopstart  stopstart.go  stateful stop and start of one container whose
//	                         workload (bench/memhog) holds dirtied anonymous
//	                         memory: raw `lxc-checkpoint -s` then `-r`, the
//	                         floor, against `stop-stateful` then `start`
//	                         written to its ctl, in alternating rounds, with
//	                         memhog checked intact after every restore, and
//	                         the bytes each side stored
//	snapshots  snapshots.go  `snapshot NAME --stateful` against raw
//	                         `lxc-checkpoint` without -s (the container keeps
//	                         running), the store bytes of 1 and N snapshots
//	                         idle and with memory rewritten between them, and
//	                         `restore NAME`
//	migrate    migrate.go    given a second host's mount (--peer-mount), live
//	                         migration (`move PEER`) against stop-and-copy of
//	                         a container whose memhog rewrites its memory
//	                         steadily, the downtime measured from outside
//	                         (prober.go)
//	services   services.go   --template debian: Redis (and PostgreSQL where
//	                         this host can checkpoint it) installed from the
//	                         host's package cache, each written to by a
//	                         client on the host; the downtime that client
//	                         sees over stop-stateful + start, a stateful
//	                         snapshot's restore and a live move to the peer,
//	                         raw lxc-checkpoint -s + -r beside them, and no
//	                         acknowledged write lost
//	evacuate   evacuate.go   `evacuate` of many small containers to the peer
//	scale      scale.go      listings, memory and GC with many containers and
//	                         snapshots (fleet.go makes them)
//
// With --btrfs-mount (backends.go, issue 22) stopstart, snapshots and
// migrate run again, on a privileged container, against daemons whose LXC
// path is on btrfs; both passes also time stateless snapshots, and the run
// ends with a table of both backends against issue 22's targets.
//
// The container of the first three parts is bench.go's (template.go for
// --template debian, whose run ends with summary.go's table against issue
// 12's targets). stopstart and migrate run once per kind of container of
// --kinds, privileged and unprivileged, and end with kinds.go's table of
// both side by side; the other parts measure privileged containers. The bench reads and writes the mount through
// internal/tree, the client that the end-to-end tests use too.
//
// It needs root and a running ctrfs mount (scripts/bench.sh starts two
// private ones). It makes no timed assertions: it reports whether the
// targets are met and exits non-zero only when something fails.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	mount, lxcpath, name, memhog, dumpDir string
	runs, mib                             int
	interval                              time.Duration
	rawOnly, keep                         bool

	store          string  // the daemon's --store, for `du -sb STORE/images/chunks`
	snapshots      int     // snapshots per series; 0 skips the snapshot benchmark
	rewritePct     float64 // of memhog's memory, rewritten between snapshots
	rewritePattern string  // contiguous | scattered (see bench/memhog)

	parts         map[string]bool // of partNames: the parts to run
	peerMount     string          // a second host's mount, for the migration part
	peerLxcpath   string          // its LXC path
	rewriteRate   float64         // MiB/s memhog rewrites steadily in the migration part
	probeInterval time.Duration   // between connections to the container's service
	// compareFullDumps adds live moves with `move PEER --full-dumps` to
	// each migration round: whole-dump precopy beside pre-dumps.
	compareFullDumps bool
	// memhogRate is the --rewrite-rate of the container's memhog: 0 for
	// the stop/start and snapshot parts, rewriteRate for migration.
	memhogRate float64
	ballastMiB int // MiB of files put in the rootfs (see writeBallast)

	evacCounts   []int  // containers evacuated, growing (evacuate.go)
	scaleCounts  []int  // containers of the scale part, growing (scale.go)
	scaleSnaps   int    // stateless snapshots per container there
	scaleRunning int    // of which run
	metricsURL   string // the daemon's /metrics, for its memory and GC time

	template      string // the bench's containers' template (template.go)
	templateCache string // the daemons' --template-cache: its debian.info names the mirror (services.go)
	ctrfsBin      string // the ctrfs binary: its make-cgroups verb for raw debian restores
	summary       *templateSummary

	kinds     []string                    // --kinds: of kindNames (kinds.go)
	kind      string                      // of this pass's containers; "": privileged
	summaries map[string]*templateSummary // per kind, for the kinds table

	btrfs    btrfsHosts        // --btrfs-*: the daemons of the btrfs pass (backends.go)
	backend  *backendFigures   // this pass's stateless figures; nil: not comparing backends
	backends []*backendFigures // dir, then btrfs: the backends table
}

// partNames are the parts of the benchmark, in the order they run.
var partNames = []string{"stopstart", "snapshots", "migrate", "services", "evacuate", "scale"}

func main() {
	cfg := config{summaries: map[string]*templateSummary{}}
	for _, k := range kindNames {
		cfg.summaries[k] = &templateSummary{}
	}
	// The template's table keeps the privileged figures it always had.
	cfg.summary = cfg.summaries[kindPrivileged]
	flag.StringVar(&cfg.mount, "mount", "/mnt/ctrfs", "a running ctrfs mount")
	flag.StringVar(&cfg.lxcpath, "lxcpath", "/var/lib/lxc", "the LXC path that ctrfs daemon serves")
	flag.StringVar(&cfg.name, "name", "bench", "name of the benchmark container (created through the mount)")
	flag.StringVar(&cfg.memhog, "memhog", "", "the static memhog binary (default: memhog next to this program)")
	flag.StringVar(&cfg.dumpDir, "dumpdir", "", "where raw lxc-checkpoint images go (default: $TMPDIR); put it on the same disk as the ctrfs store")
	flag.IntVar(&cfg.runs, "runs", 3, "rounds of each part: raw then ctrfs stop/start; raw then ctrfs live dump, and restores, of snapshots; live and stop-and-copy moves (default 5 with --template debian)")
	flag.IntVar(&cfg.mib, "mib", 256, "MiB of dirtied anonymous memory that memhog holds")
	flag.DurationVar(&cfg.interval, "check-interval", 2*time.Second, "how often memhog re-checksums its memory (the check after each restore waits for one)")
	flag.BoolVar(&cfg.rawOnly, "raw-only", false, "time only raw lxc-checkpoint, skip ctrfs")
	flag.BoolVar(&cfg.keep, "keep", false, "leave the container (running) at the end instead of destroying it")
	flag.StringVar(&cfg.store, "store", "", "the daemon's --store directory: snapshot storage is measured as the growth of du -sb STORE/images/chunks (without it, only from the snapshots' info)")
	flag.IntVar(&cfg.snapshots, "snapshots", 10, "stateful snapshots per series (idle, and with memory rewritten between them); 0 skips the snapshot benchmark")
	flag.Float64Var(&cfg.rewritePct, "rewrite-percent", 5, "percent of memhog's memory rewritten between the snapshots of the second series")
	flag.StringVar(&cfg.rewritePattern, "rewrite-pattern", "contiguous", "which pages are rewritten: contiguous (one hot run, the realistic working set) or scattered (one page in every 100/percent)")
	flag.IntVar(&cfg.ballastMiB, "ballast-mib", 0, "MiB of files (thousands of small ones, some large) put in the container's rootfs, to time what snapshots and moves do with a big rootfs")
	only := flag.String("only", "", "run only these parts, comma-separated: "+strings.Join(partNames, ", ")+" (default: all)")
	flag.StringVar(&cfg.peerMount, "peer-mount", "", "the ctrfs mount of a second host in the same cluster, for the migration part (none: the part is skipped)")
	flag.StringVar(&cfg.peerLxcpath, "peer-lxcpath", "", "the LXC path that the second host's daemon serves")
	flag.Float64Var(&cfg.rewriteRate, "rewrite-rate", 20, "MiB/s of memory that memhog rewrites steadily during the migration part")
	flag.BoolVar(&cfg.compareFullDumps, "compare-full-dumps", false, "the migration part also moves live with `move PEER --full-dumps` each round (precopy by whole dumps), to compare with the pre-dump rounds of hosts that track dirty memory")
	flag.DurationVar(&cfg.probeInterval, "probe-interval", 10*time.Millisecond, "how often the migration part connects to the container's service on port 8080")
	kinds := flag.String("kinds", strings.Join(kindNames, ","), "the kinds of container the stopstart and migrate parts measure, each on its own container, comma-separated: "+strings.Join(kindNames, ", ")+" (the other parts: privileged)")
	evacCounts := flag.String("evacuate-counts", "5,10,20", "how many running containers the evacuate part moves, growing, comma-separated")
	scaleCounts := flag.String("scale-counts", "10,100", "how many containers the scale part makes, growing, comma-separated")
	flag.IntVar(&cfg.scaleSnaps, "scale-snapshots", 10, "stateless snapshots per container in the scale part")
	flag.IntVar(&cfg.scaleRunning, "scale-running", 3, "containers of the scale part that run")
	flag.StringVar(&cfg.template, "template", templateBusybox, "the template of the bench's containers: busybox, or debian (systemd; made through the top-level ctl, memhog as a systemd service); the stop/start, snapshot and migration parts use it")
	flag.StringVar(&cfg.templateCache, "template-cache", "/var/cache/ctrfs/templates", "the daemons' --template-cache, whose debian.info names the mirror that the services part's packages come from")
	flag.StringVar(&cfg.ctrfsBin, "ctrfs", "", "the ctrfs binary, whose make-cgroups verb recreates a debian container's cgroups in raw restores (default: ctrfs next to this program)")
	fetch := flag.Bool("fetch-packages", false, "only fill this host's package cache for the services part (Redis and PostgreSQL) from --template-cache's debian archive, print its directory and exit: the test bed's guests reach no mirror (scripts/vmtest/bench.sh copies it in)")
	flag.StringVar(&cfg.btrfs.mount, "btrfs-mount", "", "the mount of a daemon whose LXC path is on btrfs (serve --storage btrfs): stopstart, snapshots and migrate run again there, and a last table sets both backends side by side against issue 22's targets (scripts/bench.sh: BENCH_BTRFS=1)")
	flag.StringVar(&cfg.btrfs.lxcpath, "btrfs-lxcpath", "", "the LXC path that the --btrfs-mount daemon serves")
	flag.StringVar(&cfg.btrfs.store, "btrfs-store", "", "the --btrfs-mount daemon's --store directory, as --store")
	flag.StringVar(&cfg.btrfs.peerMount, "btrfs-peer-mount", "", "the mount of a second btrfs daemon in the --btrfs-mount daemon's cluster, for the btrfs pass's migration part")
	flag.StringVar(&cfg.btrfs.peerLxcpath, "btrfs-peer-lxcpath", "", "the LXC path that the --btrfs-peer-mount daemon serves")
	flag.StringVar(&cfg.metricsURL, "metrics-url", "", "the daemon's metrics (serve --metrics), e.g. http://127.0.0.2:7992/metrics: the scale part reads its memory and GC time there")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: ctrfs-bench [flags]\n\n"+
			"Times raw lxc-checkpoint against ctrfs stop-stateful/start on one container\n"+
			"holding --mib MiB of dirtied memory, alternating, and prints a table; then\n"+
			"times and sizes stateful snapshots and their restore, and prints a second;\n"+
			"then, with --peer-mount, times live migration against stop-and-copy to the\n"+
			"peer and back, with the downtime seen by a client, and prints a third.\n\nflags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ctrfs-bench: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if *fetch {
		dir, downloaded, err := fetchPackages(cfg.templateCache)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ctrfs-bench: --fetch-packages:", err)
			os.Exit(1)
		}
		if downloaded {
			fmt.Fprintln(os.Stderr, "ctrfs-bench: --fetch-packages: downloaded into", dir)
		}
		fmt.Println(dir)
		return
	}
	if cfg.runs < 1 || cfg.mib < 2 || cfg.interval <= 0 || cfg.snapshots < 0 ||
		cfg.rewritePct <= 0 || cfg.rewritePct > 100 ||
		(cfg.rewritePattern != "contiguous" && cfg.rewritePattern != "scattered") ||
		cfg.rewriteRate <= 0 || cfg.probeInterval <= 0 || cfg.ballastMiB < 0 {
		fmt.Fprintln(os.Stderr, "ctrfs-bench: --runs must be >= 1, --mib >= 2, --check-interval > 0, --snapshots >= 0,\n"+
			"--rewrite-percent in (0, 100], --rewrite-pattern contiguous or scattered,\n"+
			"--rewrite-rate > 0, --probe-interval > 0, --ballast-mib >= 0")
		os.Exit(2)
	}
	var err error
	if cfg.evacCounts, err = growingCounts(*evacCounts); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs-bench: --evacuate-counts:", err)
		os.Exit(2)
	}
	if cfg.scaleCounts, err = growingCounts(*scaleCounts); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs-bench: --scale-counts:", err)
		os.Exit(2)
	}
	if cfg.kinds, err = parseKinds(*kinds); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs-bench: --kinds:", err)
		os.Exit(2)
	}
	cfg.parts = map[string]bool{}
	for _, p := range partNames {
		cfg.parts[p] = *only == ""
	}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, ok := cfg.parts[p]; !ok {
			fmt.Fprintf(os.Stderr, "ctrfs-bench: --only: unknown part %q (the parts: %s)\n", p, strings.Join(partNames, ", "))
			os.Exit(2)
		}
		cfg.parts[p] = true
	}
	if cfg.snapshots == 0 {
		cfg.parts["snapshots"] = false
	}
	if cfg.btrfs.mount != "" && cfg.btrfs.lxcpath == "" || cfg.btrfs.peerMount != "" && cfg.btrfs.peerLxcpath == "" {
		fmt.Fprintln(os.Stderr, "ctrfs-bench: --btrfs-mount needs --btrfs-lxcpath, and --btrfs-peer-mount --btrfs-peer-lxcpath (the daemons' LXC paths)")
		os.Exit(2)
	}
	if cfg.template != templateBusybox && cfg.template != templateDebian {
		fmt.Fprintf(os.Stderr, "ctrfs-bench: --template: %q is not busybox or debian\n", cfg.template)
		os.Exit(2)
	}
	if cfg.template == templateDebian {
		runsSet := false
		flag.Visit(func(f *flag.Flag) { runsSet = runsSet || f.Name == "runs" })
		if !runsSet {
			cfg.runs = templateDefaultRuns
		}
		// The services part alone is also run with fewer rounds, to
		// show that it works (docs/performance.md, Services).
		onlyServices := true
		for p, on := range cfg.parts {
			onlyServices = onlyServices && (!on || p == "services")
		}
		if cfg.runs < 3 && !onlyServices {
			fmt.Fprintln(os.Stderr, "ctrfs-bench: --template debian wants --runs >= 3 (min/median/max of each figure)")
			os.Exit(2)
		}
	}
	if self, err := os.Executable(); err == nil {
		if cfg.memhog == "" {
			cfg.memhog = filepath.Join(filepath.Dir(self), "memhog")
		}
		if cfg.ctrfsBin == "" {
			cfg.ctrfsBin = filepath.Join(filepath.Dir(self), "ctrfs")
		}
	}
	// CRIU runs the raw restore's hook, which names it, from its own cwd.
	if abs, err := filepath.Abs(cfg.ctrfsBin); err == nil {
		cfg.ctrfsBin = abs
	}
	if err := run(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs-bench: FAILED:", err)
		os.Exit(1)
	}
}

func run(cfg *config) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (LXC, CRIU)")
	}
	if _, err := os.Stat(filepath.Join(cfg.mount, "containers")); err != nil {
		return fmt.Errorf("no ctrfs mount at %s: %w", cfg.mount, err)
	}
	if st, err := os.Stat(cfg.memhog); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("--memhog %q: not a file (build it with CGO_ENABLED=0 go build -o bin/memhog ./bench/memhog)", cfg.memhog)
	}
	for _, tool := range []string{"lxc-checkpoint", "criu"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: %w", tool, err)
		}
	}
	work, err := os.MkdirTemp("", "ctrfs-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Stop between steps on ^C and clean up, rather than dying in the middle
	// of a checkpoint. The tools run in their own session and do not see it.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(interrupts)

	fmt.Printf("ctrfs-bench: criu %s, lxc %s, kernel %s\n", toolVersion("criu"), toolVersion("lxc-checkpoint"), kernel())
	compare := cfg.btrfs.mount != "" && !cfg.rawOnly
	if compare {
		// The daemons of --mount are the directory backend's column.
		cfg.backend = newBackendFigures(storageDir, cfg.summaries[kindPrivileged])
		cfg.backends = []*backendFigures{cfg.backend}
	}
	for _, kind := range kindNames {
		kcfg := cfg.forKind(kind)
		if kcfg.parts["stopstart"] || kcfg.parts["snapshots"] {
			if err := runCheckpoint(newBench(kcfg, work, interrupts)); err != nil {
				return fmt.Errorf("%s container: %w", kind, err)
			}
		}
	}
	if cfg.parts["migrate"] {
		switch {
		case cfg.rawOnly:
			fmt.Println("\nctrfs-bench: migration: skipped (--raw-only: it has no raw side)")
		case cfg.peerMount == "":
			fmt.Println("\nctrfs-bench: migration: skipped (no --peer-mount; scripts/bench.sh starts a peer)")
		default:
			for _, kind := range cfg.kinds {
				if err := runMigration(cfg.forKind(kind), work, interrupts); err != nil {
					return fmt.Errorf("migration, %s container: %w", kind, err)
				}
			}
		}
	}
	// The other backend right after the parts it compares, so that both
	// columns are measured close together under the same load. A failure
	// there still prints the tables of what was measured.
	var btrfsErr error
	if compare {
		btrfsErr = runBtrfsPass(cfg, work, interrupts)
	} else if cfg.btrfs.mount != "" {
		fmt.Println("\nctrfs-bench: btrfs backend: skipped (--raw-only: its table compares ctrfs)")
	}
	if cfg.parts["services"] && btrfsErr == nil {
		if cfg.template != templateDebian {
			fmt.Printf("\nctrfs-bench: services: skipped (its services are Debian packages: --template debian)\n")
		} else if err := runServices(cfg, work, interrupts); err != nil {
			return fmt.Errorf("services: %w", err)
		}
	}
	if cfg.template != templateBusybox && (cfg.parts["evacuate"] || cfg.parts["scale"]) {
		fmt.Printf("\nctrfs-bench: evacuate and scale: skipped (they make many busybox containers; --template %s)\n", cfg.template)
		cfg.parts["evacuate"], cfg.parts["scale"] = false, false
	}
	if btrfsErr != nil {
		cfg.parts["evacuate"], cfg.parts["scale"] = false, false
	}
	if cfg.parts["evacuate"] && !cfg.rawOnly {
		if err := runEvacuate(cfg); err != nil {
			return fmt.Errorf("evacuate: %w", err)
		}
	}
	if cfg.parts["scale"] && !cfg.rawOnly {
		if err := runScale(cfg); err != nil {
			return fmt.Errorf("scale: %w", err)
		}
	}
	if cfg.template != templateBusybox && !cfg.rawOnly {
		cfg.summary.report(os.Stdout, cfg, loadAverage())
	}
	if !cfg.rawOnly {
		kindsReport(os.Stdout, cfg.kinds, cfg.summaries, cfg.runs, cfg.mib, cfg.template, measuredOn())
		backendsReport(os.Stdout, cfg, cfg.backends, measuredOn())
	}
	return btrfsErr
}

// growingCounts parses "5,10,20": positive and growing.
func growingCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("%q: want growing positive numbers, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}
