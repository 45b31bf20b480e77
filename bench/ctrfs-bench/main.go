// Command ctrfs-bench measures stateful stop and start: on one container
// whose workload (bench/memhog) holds dirtied anonymous memory, it times, in
// alternating rounds, the floor (raw `lxc-checkpoint -s` then
// `lxc-checkpoint -r`) and ctrfs (`stop-stateful` then `start` written to
// the container's ctl), checks after every restore that the container runs
// and that memhog's memory came back intact, and prints a table of the
// medians, the time ratio and the bytes each side stored.
//
// Then it measures stateful snapshots (snapshots.go): the time of `snapshot
// NAME --stateful` against raw `lxc-checkpoint` without -s (the container
// keeps running), the store bytes that 1 and N snapshots cost with the
// container idle and with a part of its memory rewritten between them, and
// the time of `restore NAME`, and prints a second table.
//
// Then, given a second host's mount (--peer-mount), it measures migration
// (migrate.go): live migration (`move PEER`) against stop-and-copy
// (`stop-stateful`, a cold `move PEER`, `start` there) of a container whose
// memhog rewrites its memory steadily, with the downtime measured from
// outside by polling the container's TCP service, and prints a third table.
//
// It needs root and a running ctrfs mount (scripts/bench.sh starts two
// private ones). It makes no timed assertions: it reports whether the
// targets are met and exits non-zero only when something fails.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The targets of the issue: ctrfs within 1.15x of raw time while storing at
// most half of the raw image bytes.
const (
	targetTimeRatio  = 1.15
	targetBytesRatio = 0.5
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
	// memhogRate is the --rewrite-rate of the container's memhog: 0 for
	// the stop/start and snapshot parts, rewriteRate for migration.
	memhogRate float64
	ballastMiB int // MiB of files put in the rootfs (see writeBallast)

	evacCounts   []int  // containers evacuated, growing (evacuate.go)
	scaleCounts  []int  // containers of the scale part, growing (scale.go)
	scaleSnaps   int    // stateless snapshots per container there
	scaleRunning int    // of which run
	metricsURL   string // the daemon's /metrics, for its memory and GC time

	template string // the bench's containers' template (template.go)
	ctrfsBin string // the ctrfs binary: its make-cgroups verb for raw debian restores
	summary  *templateSummary
}

// partNames are the parts of the benchmark, in the order they run.
var partNames = []string{"stopstart", "snapshots", "migrate", "evacuate", "scale"}

func main() {
	cfg := config{summary: &templateSummary{}}
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
	flag.DurationVar(&cfg.probeInterval, "probe-interval", 10*time.Millisecond, "how often the migration part connects to the container's service on port 8080")
	evacCounts := flag.String("evacuate-counts", "5,10,20", "how many running containers the evacuate part moves, growing, comma-separated")
	scaleCounts := flag.String("scale-counts", "10,100", "how many containers the scale part makes, growing, comma-separated")
	flag.IntVar(&cfg.scaleSnaps, "scale-snapshots", 10, "stateless snapshots per container in the scale part")
	flag.IntVar(&cfg.scaleRunning, "scale-running", 3, "containers of the scale part that run")
	flag.StringVar(&cfg.template, "template", templateBusybox, "the template of the bench's containers: busybox, or debian (systemd; made through the top-level ctl, memhog as a systemd service); the stop/start, snapshot and migration parts use it")
	flag.StringVar(&cfg.ctrfsBin, "ctrfs", "", "the ctrfs binary, whose make-cgroups verb recreates a debian container's cgroups in raw restores (default: ctrfs next to this program)")
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
		if cfg.runs < 3 {
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

// sample is one side of one round.
type sample struct {
	run             int
	side            string // "raw" or "ctrfs"
	dump, restore   time.Duration
	rawBytes        int64
	storedBytes     int64 // -1: not known
	sumAfterRestore string
	phases          []string // ctrfs: its own phase timings from info
	// ctrfs: seconds of its own work on the critical path, from info
	// (-1 unknown): storing after CRIU had exited; and the restore's
	// time beyond raw CRIU's (ctrfs serves the images to CRIU as it
	// restores, so there is no step of its own to time).
	storeTail float64
}

func (s sample) total() time.Duration { return s.dump + s.restore }

// bench is one run of the benchmark against one container.
type bench struct {
	cfg      *config
	ctr      string // MOUNT/containers/NAME
	rootfs   string
	work     string // temporary files: CRIU config, command logs
	criuConf string
	// memhog's pid in the container, and the checksum its memory must
	// have: the one in `ready`, then the one after the last rewrite, or
	// the one a restored snapshot was taken with.
	readyPid   string
	readySum   string
	interrupts chan os.Signal
	snaps      map[string]bool // snapshots this run took and has not deleted
	probe      *prober         // the counter's, while snapshots are timed (debian)
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
	if cfg.parts["stopstart"] || cfg.parts["snapshots"] {
		if err := runCheckpoint(newBench(cfg, work, interrupts)); err != nil {
			return err
		}
	}
	if cfg.parts["migrate"] {
		switch {
		case cfg.rawOnly:
			fmt.Println("\nctrfs-bench: migration: skipped (--raw-only: it has no raw side)")
		case cfg.peerMount == "":
			fmt.Println("\nctrfs-bench: migration: skipped (no --peer-mount; scripts/bench.sh starts a peer)")
		default:
			if err := runMigration(cfg, work, interrupts); err != nil {
				return fmt.Errorf("migration: %w", err)
			}
		}
	}
	if cfg.template != templateBusybox && (cfg.parts["evacuate"] || cfg.parts["scale"]) {
		fmt.Printf("\nctrfs-bench: evacuate and scale: skipped (they make many busybox containers; --template %s)\n", cfg.template)
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
	return nil
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

func newBench(cfg *config, work string, interrupts chan os.Signal) *bench {
	return &bench{cfg: cfg, ctr: filepath.Join(cfg.mount, "containers", cfg.name), work: work,
		criuConf: filepath.Join(work, "criu-restore.conf"), interrupts: interrupts, snaps: map[string]bool{}}
}

// runCheckpoint runs the stop/start and snapshot parts on one container.
func runCheckpoint(b *bench) error {
	cfg := b.cfg
	fmt.Printf("ctrfs-bench: %s container %q on %s, memhog holding %d MiB (half random, half text), %d round(s)%s\n",
		cfg.template, cfg.name, cfg.mount, cfg.mib, cfg.runs, map[bool]string{true: ", raw only", false: ", alternating raw and ctrfs"}[cfg.rawOnly])

	created, err := b.setup()
	if created && !cfg.keep {
		defer b.destroy()
	}
	if err != nil {
		return err
	}

	var samples []sample
	for i := 1; i <= cfg.runs && cfg.parts["stopstart"]; i++ {
		s, err := b.rawRound(i)
		if err != nil {
			return fmt.Errorf("round %d, raw: %w", i, err)
		}
		samples = append(samples, s)
		progress(s)
		if cfg.rawOnly {
			continue
		}
		s, err = b.ctrfsRound(i)
		if err != nil {
			return fmt.Errorf("round %d, ctrfs: %w", i, err)
		}
		samples = append(samples, s)
		progress(s)
	}
	if cfg.parts["stopstart"] {
		report(os.Stdout, cfg, samples)
		cfg.summary.addStopStart(samples)
	}

	if cfg.parts["snapshots"] {
		// Snapshots this run took go at the end, even with --keep and
		// after a failure; runs after destroy (deferred earlier).
		defer b.deleteSnapshots()
		res, err := b.snapshotBench(samples)
		if err != nil {
			return fmt.Errorf("snapshots: %w", err)
		}
		reportSnapshots(os.Stdout, cfg, res)
		cfg.summary.addSnapshots(res)
	}
	if cfg.keep {
		fmt.Printf("\n--keep: container %s left running\n", b.ctr)
	}
	return nil
}

// checkInterrupt fails once ^C or SIGTERM has arrived.
func (b *bench) checkInterrupt() error {
	select {
	case sig := <-b.interrupts:
		b.interrupts <- sig
		return fmt.Errorf("interrupted (%s)", sig)
	default:
		return nil
	}
}

// setup creates the container through the mount, installs memhog as a
// respawned service of its init, starts it and waits until memhog has
// dirtied its memory. created says whether there is a container to destroy.
func (b *bench) setup() (created bool, err error) {
	cfg := b.cfg
	if err := b.createContainer(); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("create %s: %w%s", b.ctr, err, b.lastError())
		}
		// Reuse only a container that an earlier bench made (--keep):
		// never rewrite or destroy somebody else's.
		if !b.memhogInstalled(rootfsOf(cfg.lxcpath, cfg.name)) {
			return false, fmt.Errorf("%s exists and is not a benchmark container: pick another --name", b.ctr)
		}
		fmt.Printf("ctrfs-bench: reusing %s from an earlier run\n", b.ctr)
		if st, _ := b.status(); st != "STOPPED" || b.info()["stateful"] == "yes" {
			if err := b.ctl("stop"); err != nil {
				return true, err
			}
		}
	}
	b.rootfs = rootfsOf(cfg.lxcpath, cfg.name)
	if _, err := os.Stat(filepath.Join(b.rootfs, "etc")); err != nil {
		return true, fmt.Errorf("the container's rootfs is not at %s (is --lxcpath the daemon's?): %w", b.rootfs, err)
	}
	if err := b.installMemhog(); err != nil {
		return true, err
	}
	if err := os.RemoveAll(b.memhogDir()); err != nil {
		return true, err
	}
	if cfg.ballastMiB > 0 {
		if err := writeBallast(b.rootfs, cfg.ballastMiB); err != nil {
			return true, fmt.Errorf("ballast: %w", err)
		}
	}

	fmt.Printf("ctrfs-bench: starting %s on %s and waiting for memhog to fill %d MiB\n", cfg.name, cfg.mount, cfg.mib)
	if err := b.ctl("start"); err != nil {
		return true, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		kv := readKV(filepath.Join(b.memhogDir(), "ready"))
		if kv["sum"] != "" {
			b.readyPid, b.readySum = kv["pid"], kv["sum"]
			fmt.Printf("ctrfs-bench: memhog ready (pid %s in the container, checksum %s, filled in %ss)\n",
				kv["pid"], kv["sum"], kv["fill-seconds"])
			break
		}
		if time.Now().After(deadline) {
			st, _ := b.status()
			return true, fmt.Errorf("memhog did not report ready within 2 minutes (container %s)", st)
		}
		if err := b.checkInterrupt(); err != nil {
			return true, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := b.waitBooted(); err != nil {
		return true, err
	}
	// One full re-checksum before the first dump: the workload is steady.
	if _, err := b.checkMemhog(0); err != nil {
		return true, fmt.Errorf("before the first checkpoint: %w", err)
	}
	return true, nil
}

// rawRound times `lxc-checkpoint -s` and `lxc-checkpoint -r` into a fresh
// directory and measures the images.
func (b *bench) rawRound(i int) (sample, error) {
	s := sample{run: i, side: "raw"}
	if err := b.checkInterrupt(); err != nil {
		return s, err
	}
	dir, err := os.MkdirTemp(b.cfg.dumpDir, "ctrfs-bench-raw-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(dir)
	base := []string{"-P", b.cfg.lxcpath, "-n", b.cfg.name, "-D", dir}
	if err := b.prepareRawRestore(); err != nil {
		return s, err
	}

	t0 := time.Now()
	if err := b.tool(fmt.Sprintf("raw-dump-%d", i), nil, "lxc-checkpoint", append(base, "-s")...); err != nil {
		return s, fmt.Errorf("lxc-checkpoint -s: %w%s", err, logTail(filepath.Join(dir, "dump.log")))
	}
	if err := b.waitStatus("STOPPED"); err != nil {
		return s, fmt.Errorf("after lxc-checkpoint -s: %w", err)
	}
	s.dump = time.Since(t0)
	if s.rawBytes, err = dirBytes(dir, nil); err != nil {
		return s, err
	}
	s.storedBytes = s.rawBytes
	seq := b.lastSeq()

	if err := b.checkInterrupt(); err != nil {
		return s, b.rescue(err, dir)
	}
	t1 := time.Now()
	if err := b.tool(fmt.Sprintf("raw-restore-%d", i), []string{"CRIU_CONFIG_FILE=" + b.criuConf},
		"lxc-checkpoint", append(base, "-r")...); err != nil {
		return s, fmt.Errorf("lxc-checkpoint -r: %w%s", err, logTail(filepath.Join(dir, "restore.log")))
	}
	if err := b.waitStatus("RUNNING"); err != nil {
		return s, fmt.Errorf("after lxc-checkpoint -r: %w%s", err, logTail(filepath.Join(dir, "restore.log")))
	}
	s.restore = time.Since(t1)
	if s.sumAfterRestore, err = b.checkMemhog(seq); err != nil {
		return s, fmt.Errorf("after lxc-checkpoint -r: %w", err)
	}
	return s, nil
}

// rescue restores a container that a raw dump left stopped, so that an
// interrupt between the two halves does not lose the workload.
func (b *bench) rescue(cause error, dir string) error {
	if err := b.tool("raw-rescue", []string{"CRIU_CONFIG_FILE=" + b.criuConf}, "lxc-checkpoint",
		"-P", b.cfg.lxcpath, "-n", b.cfg.name, "-D", dir, "-r"); err != nil {
		return fmt.Errorf("%w; restoring the raw checkpoint afterwards failed too: %v", cause, err)
	}
	return cause
}

// ctrfsRound times `stop-stateful` and `start` through ctl and reads the
// state's sizes from info while it is saved.
func (b *bench) ctrfsRound(i int) (sample, error) {
	s := sample{run: i, side: "ctrfs", storedBytes: -1, storeTail: -1}
	if err := b.checkInterrupt(); err != nil {
		return s, err
	}
	t0 := time.Now()
	if err := b.ctl("stop-stateful"); err != nil {
		return s, err
	}
	if err := b.waitStatus("STOPPED"); err != nil {
		return s, fmt.Errorf("after stop-stateful: %w", err)
	}
	s.dump = time.Since(t0)

	info := b.info()
	s.phases = phasesOf(info, "criu-frozen-seconds", "dump-seconds", "store-seconds")
	s.storeTail = parseFloat(info["store-seconds"])
	raw, rawErr := strconv.ParseInt(info["state-raw-bytes"], 10, 64)
	stored, storedErr := strconv.ParseInt(info["state-stored-bytes"], 10, 64)
	if rawErr == nil {
		s.rawBytes = raw
	} else {
		// No figures in info: the images as the state/ directory shows
		// them (decompressed), without the decoded `ps`.
		n, err := dirBytes(filepath.Join(b.ctr, "state"), func(name string) bool { return name != "ps" })
		if err != nil {
			return s, fmt.Errorf("no state-raw-bytes in info and no state/ to measure: %w", err)
		}
		s.rawBytes = n
	}
	if storedErr == nil {
		s.storedBytes = stored
	}
	seq := b.lastSeq()

	t1 := time.Now()
	if err := b.ctl("start"); err != nil {
		return s, err
	}
	if err := b.waitStatus("RUNNING"); err != nil {
		return s, fmt.Errorf("after start: %w", err)
	}
	s.restore = time.Since(t1)
	s.phases = append(s.phases, phasesOf(b.info(), "criu-restore-time-seconds", "criu-restore-seconds")...)
	var err error
	if s.sumAfterRestore, err = b.checkMemhog(seq); err != nil {
		return s, fmt.Errorf("after start: %w", err)
	}
	return s, nil
}

// checkMemhog waits for memhog to rewrite its sum file past seq, and checks
// that it is the same process with the same memory as when it was ready:
// every block holds what memhog last wrote there (bad-blocks 0) and, unless
// it rewrites its memory steadily, the checksum is the expected one.
func (b *bench) checkMemhog(seq int) (string, error) {
	deadline := time.Now().Add(3*b.cfg.interval + 15*time.Second)
	for {
		kv := readKV(filepath.Join(b.memhogDir(), "sum"))
		if n, err := strconv.Atoi(kv["seq"]); err == nil && n > seq {
			if kv["pid"] != b.readyPid {
				return "", fmt.Errorf("memhog is a new process (pid %s, was %s): the restored one died and init respawned it", kv["pid"], b.readyPid)
			}
			if kv["bad-blocks"] != "0" {
				return "", fmt.Errorf("memhog's memory is damaged: %s blocks of 64 KiB differ from what it wrote there (sum file %v)", kv["bad-blocks"], kv)
			}
			if b.cfg.memhogRate == 0 && kv["sum"] != b.readySum {
				return "", fmt.Errorf("memhog's memory changed: checksum %s, was %s", kv["sum"], b.readySum)
			}
			return kv["sum"], nil
		}
		if time.Now().After(deadline) {
			st, _ := b.status()
			return "", fmt.Errorf("memhog did not re-checksum its memory within %s (container %s, last sum file %v)",
				3*b.cfg.interval+15*time.Second, st, kv)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastSeq is memhog's last written sequence number; read while the
// container is stopped, anything larger proves a live process.
func (b *bench) lastSeq() int {
	n, _ := strconv.Atoi(readKV(filepath.Join(b.memhogDir(), "sum"))["seq"])
	return n
}

func (b *bench) memhogDir() string { return filepath.Join(b.rootfs, "var/lib/memhog") }

// destroy stops and removes the container, through the mount when it can.
func (b *bench) destroy() {
	st, err := b.status()
	if err != nil {
		return
	}
	if st != "STOPPED" || b.info()["stateful"] == "yes" {
		if err := b.ctl("stop"); err != nil {
			fmt.Fprintln(os.Stderr, "ctrfs-bench: cleanup:", err, "- killing it with lxc-stop")
			b.tool("cleanup-stop", nil, "lxc-stop", "-P", b.cfg.lxcpath, "-n", b.cfg.name, "-k")
		}
	}
	if err := os.Remove(b.ctr); err != nil {
		fmt.Fprintf(os.Stderr, "ctrfs-bench: cleanup: rmdir %s: %v%s\n", b.ctr, err, b.lastError())
	}
}

// ctl writes one command to the container's ctl; the write returns when
// the command has finished.
func (b *bench) ctl(cmd string) error {
	f, err := os.OpenFile(filepath.Join(b.ctr, "ctl"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	_, err = f.Write([]byte(cmd + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("echo %s > ctl: %w%s", cmd, err, b.lastError())
	}
	return nil
}

// lastError is the container's `error` file, formatted to follow a message.
func (b *bench) lastError() string {
	data, _ := os.ReadFile(filepath.Join(b.ctr, "error"))
	if msg := strings.TrimSpace(string(data)); msg != "" {
		return " (error: " + msg + ")"
	}
	return ""
}

func (b *bench) status() (string, error) {
	data, err := os.ReadFile(filepath.Join(b.ctr, "status"))
	return strings.TrimSpace(string(data)), err
}

// waitStatus polls status until it reads want. The tools return once the
// operation is done, so this normally succeeds on the first read; the time
// spent here counts, the same for both sides.
func (b *bench) waitStatus(want string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := b.status()
		if err == nil && st == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container is %q, not %s, after 30s (%v)", st, want, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *bench) info() map[string]string { return readKV(filepath.Join(b.ctr, "info")) }

// tool runs a command with its output in a log file, never a pipe: a
// restored container's monitor inherits the restoring process's
// descriptors and outlives it, so a pipe would never see EOF.
func (b *bench) tool(logName string, env []string, name string, args ...string) error {
	logPath := filepath.Join(b.work, logName+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(logPath)
		if msg := strings.TrimSpace(string(data)); msg != "" {
			return fmt.Errorf("%v\n--- %s %s output ---\n%s", err, name, strings.Join(args, " "), msg)
		}
		return err
	}
	return nil
}

// report prints every run, the medians, the ratios and the targets.
func report(w io.Writer, cfg *config, samples []sample) {
	fmt.Fprintf(w, "\nstateful stop and start, %d MiB memhog, %d round(s)\n\n", cfg.mib, cfg.runs)
	fmt.Fprintf(w, "%-5s %-6s %9s %10s %9s %14s %14s\n", "run", "side", "dump s", "restore s", "total s", "raw bytes", "stored bytes")
	for _, s := range samples {
		fmt.Fprintf(w, "%-5d %-6s %9.3f %10.3f %9.3f %14d %14s\n", s.run, s.side,
			s.dump.Seconds(), s.restore.Seconds(), s.total().Seconds(), s.rawBytes, bytesOrNA(s.storedBytes))
	}

	type med struct {
		dump, restore, total float64
		raw, stored          int64 // stored -1: not known
	}
	medians := map[string]med{}
	sides := []string{"raw", "ctrfs"}
	if cfg.rawOnly {
		sides = sides[:1]
	}
	fmt.Fprintf(w, "\n%-12s %9s %10s %9s %22s %22s\n", "median", "dump s", "restore s", "total s", "raw bytes", "stored bytes")
	for _, side := range sides {
		var d, r, t []float64
		var raw, stored []int64
		storedKnown := true
		for _, s := range samples {
			if s.side != side {
				continue
			}
			d, r, t = append(d, s.dump.Seconds()), append(r, s.restore.Seconds()), append(t, s.total().Seconds())
			raw = append(raw, s.rawBytes)
			stored = append(stored, s.storedBytes)
			storedKnown = storedKnown && s.storedBytes >= 0
		}
		m := med{dump: median(d), restore: median(r), total: median(t), raw: medianInt(raw), stored: -1}
		if storedKnown {
			m.stored = medianInt(stored)
		}
		medians[side] = m
		label := side
		if side == "raw" {
			label = "raw (floor)"
		}
		fmt.Fprintf(w, "%-12s %9.3f %10.3f %9.3f %22s %22s\n", label, m.dump, m.restore, m.total, bytesMiB(m.raw), bytesMiB(m.stored))
	}

	fmt.Fprintln(w)
	if cfg.rawOnly {
		fmt.Fprintln(w, "ctrfs/raw total time:     n/a (--raw-only)")
		fmt.Fprintln(w, "ctrfs stored / raw bytes: n/a (--raw-only)")
		return
	}
	raw, ct := medians["raw"], medians["ctrfs"]
	timeRatio := ct.total / raw.total
	fmt.Fprintf(w, "ctrfs/raw total time:     %.3fx   target <= %.2fx   %s\n", timeRatio, targetTimeRatio, met(timeRatio <= targetTimeRatio))
	if lo, mid, hi, ok := roundRatios(samples); ok {
		fmt.Fprintf(w, "  per round (ctrfs/raw of the same round) min/median/max: %.3fx/%.3fx/%.3fx\n", lo, mid, hi)
	}
	if tail := medianKnown(samples, func(s sample) float64 { return s.storeTail }); tail >= 0 {
		fmt.Fprintf(w, "  beyond raw: dump +%.3f s (of which storing after CRIU exited %.3f s), restore +%.3f s;\n",
			ct.dump-raw.dump, tail, ct.restore-raw.restore)
		fmt.Fprintf(w, "  the target leaves %.3f s (%.2f of raw) for all that ctrfs adds\n", (targetTimeRatio-1)*raw.total, targetTimeRatio-1)
	}
	if ct.stored < 0 {
		fmt.Fprintf(w, "ctrfs stored / raw bytes: n/a     target <= %.2f    not measured (info has no state-stored-bytes)\n", targetBytesRatio)
		return
	}
	bytesRatio := float64(ct.stored) / float64(raw.raw)
	fmt.Fprintf(w, "ctrfs stored / raw bytes: %.3f    target <= %.2f    %s\n", bytesRatio, targetBytesRatio, met(bytesRatio <= targetBytesRatio))
}

// roundRatios pairs each round's ctrfs total with that round's raw total,
// which ran just before it: on a shared machine the load changes between
// rounds more than within one, so the spread of these ratios says more
// than the ratio of the medians alone.
func roundRatios(samples []sample) (lo, mid, hi float64, ok bool) {
	raw := map[int]float64{}
	for _, s := range samples {
		if s.side == "raw" {
			raw[s.run] = s.total().Seconds()
		}
	}
	var r []float64
	for _, s := range samples {
		if s.side == "ctrfs" && raw[s.run] > 0 {
			r = append(r, s.total().Seconds()/raw[s.run])
		}
	}
	if len(r) == 0 {
		return 0, 0, 0, false
	}
	return slices.Min(r), median(r), slices.Max(r), true
}

// medianKnown is the median of what of reads from the ctrfs samples, -1 if
// any of them lacks it.
func medianKnown(samples []sample, of func(sample) float64) float64 {
	var v []float64
	for _, s := range samples {
		if s.side != "ctrfs" {
			continue
		}
		if of(s) < 0 {
			return -1
		}
		v = append(v, of(s))
	}
	if len(v) == 0 {
		return -1
	}
	return median(v)
}

func progress(s sample) {
	fmt.Fprintf(os.Stderr, "ctrfs-bench: round %d %-5s dump %.3fs restore %.3fs raw %s stored %s, memhog intact (%s)\n",
		s.run, s.side, s.dump.Seconds(), s.restore.Seconds(), bytesMiB(s.rawBytes), bytesMiB(s.storedBytes), s.sumAfterRestore)
	if len(s.phases) > 0 {
		fmt.Fprintf(os.Stderr, "ctrfs-bench:   phases (s): %s\n", strings.Join(s.phases, " "))
	}
}

// phasesOf picks the phase timings of the last operation out of info.
func phasesOf(info map[string]string, keys ...string) []string {
	var out []string
	for _, k := range keys {
		if v, ok := info[k]; ok {
			out = append(out, strings.TrimSuffix(k, "-seconds")+"="+v)
		}
	}
	return out
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func bytesOrNA(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return strconv.FormatInt(n, 10)
}

func bytesMiB(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%d (%.1f MiB)", n, float64(n)/(1<<20))
}

// spread is "min/median/max" of seconds, or n/a if any is unknown (< 0).
func spread(v []float64) string {
	if len(v) == 0 || slices.Min(v) < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f/%.3f/%.3f", slices.Min(v), median(v), slices.Max(v))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(v []int64) int64 {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return int64(median(f))
}

// dirBytes sums the sizes of the regular files under dir that keep accepts
// (all of them when keep is nil).
func dirBytes(dir string, keep func(name string) bool) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || (keep != nil && !keep(d.Name())) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	return total, err
}

// readKV parses `key: value` lines; a missing file gives an empty map.
func readKV(path string) map[string]string {
	kv := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return kv
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return kv
}

// rootfsOf reads lxc.rootfs.path from the container's config; a dir: path
// is used as is, anything else falls back to LXCPATH/NAME/rootfs.
func rootfsOf(lxcpath, name string) string {
	def := filepath.Join(lxcpath, name, "rootfs")
	data, err := os.ReadFile(filepath.Join(lxcpath, name, "config"))
	if err != nil {
		return def
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "lxc.rootfs.path" {
			continue
		}
		v = strings.TrimSpace(v)
		v = strings.TrimPrefix(v, "dir:")
		if strings.HasPrefix(v, "/") {
			return v
		}
	}
	return def
}

// installFile copies src to dst through a temporary file and a rename, so
// that a binary still mapped by an old process is replaced, not rewritten.
func installFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// setInittabLine replaces every line mentioning marker with line, or
// appends it.
func setInittabLine(path, marker, line string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.Contains(l, marker) {
			out = append(out, l)
		}
	}
	out = append(out, line)
	return os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644)
}

// logTail is the last lines of a CRIU log, formatted to follow a message.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "\n--- last lines of " + path + " ---\n" + strings.Join(lines, "\n")
}

// toolVersion is what `name --version` says: CRIU's "Version: X" line, or
// the first line (LXC prints the bare version).
func toolVersion(name string) string {
	out, err := exec.Command(name, "--version").Output()
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func kernel() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(data))
}
