package main

// Storage backends (issue 22): with --btrfs-mount, the stop/start, snapshot
// and migration parts run a second time, on a privileged container, against
// a second pair of daemons whose LXC path is on btrfs (scripts/bench.sh
// makes a loop-mounted one in its work directory with BENCH_BTRFS=1): there
// a container's rootfs is a subvolume and a snapshot's rootfs a snapshot
// subvolume. Both passes also time stateless snapshots and size a series
// of them of the idle container (statelessBench: the one figure the other
// parts do not take), and the run ends with backendsReport: per backend,
// each of issue 22's targets against the same run's raw lxc-checkpoint,
// min/median/max over --runs rounds, met or NOT met.

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"ctrfs/internal/tree"
)

// Issue 22's targets, on the debian template.
const (
	targetStatelessSeconds     = 0.2 // a stateless snapshot, whole operation
	targetRestoreSeconds       = 1.0 // restore NAME, whole operation
	targetRestoreDownRatio     = 1.3 // its service downtime against raw lxc-checkpoint -r
	targetBackendFrozenRatio   = 1.1 // a stateful snapshot's frozen time against a raw dump's
	targetBackendLiveRatio     = 1.2 // a live move's downtime against raw -s + -r in place
	targetStatelessSeriesRatio = 1.1 // store bytes of N stateless snapshots of an idle container against one
)

// The backends, as the daemon's info names them (key storage).
const (
	storageDir   = "dir"
	storageBtrfs = "btrfs"
)

// btrfsHosts are the daemons of the btrfs pass: --btrfs-mount and the rest.
type btrfsHosts struct {
	mount, lxcpath, store  string
	peerMount, peerLxcpath string
}

// backendFigures are one backend's figures for backendsReport.
type backendFigures struct {
	name string
	sum  *templateSummary // the pass's privileged container: the parts' figures
	// statelessBench's: seconds of each timed `snapshot NAME`, and the
	// store's growth (du) after the first and the last snapshot of the
	// idle series; -1 unknown.
	stateless            []float64
	seriesOne, seriesAll int64
	// The btrfs filesystem's used bytes grown after the same two
	// snapshots (the subvolumes' metadata, which is not in the store);
	// -1 not measured (the directory backend's LXC path shares its disk).
	fsOne, fsAll int64
	seriesLen    int
	// failed holds, per part that failed on this backend, why: the btrfs
	// pass goes on with its other parts and the table says which figures
	// are missing for that reason (partCheckpoint: stopstart, snapshots
	// and the stateless snapshots, on one container; partMigrate).
	failed map[string]error
}

// The keys of failed: runCheckpoint's parts, and the migration part.
const (
	partCheckpoint = "stop/start and snapshots"
	partMigrate    = "migration"
)

func newBackendFigures(name string, sum *templateSummary) *backendFigures {
	return &backendFigures{name: name, sum: sum, seriesOne: -1, seriesAll: -1, fsOne: -1, fsAll: -1, failed: map[string]error{}}
}

// onBtrfs is cfg for the btrfs pass: the btrfs daemons, figures of their
// own, the privileged kind only, and the parts it compares.
func (cfg *config) onBtrfs() *config {
	b := *cfg
	b.mount, b.lxcpath, b.store = cfg.btrfs.mount, cfg.btrfs.lxcpath, cfg.btrfs.store
	b.peerMount, b.peerLxcpath = cfg.btrfs.peerMount, cfg.btrfs.peerLxcpath
	b.kinds = []string{kindPrivileged}
	b.summaries = map[string]*templateSummary{}
	for _, k := range kindNames {
		b.summaries[k] = &templateSummary{}
	}
	b.summary = b.summaries[kindPrivileged]
	b.parts = map[string]bool{}
	for _, p := range []string{"stopstart", "snapshots", "migrate"} {
		b.parts[p] = cfg.parts[p]
	}
	b.backend = newBackendFigures(storageBtrfs, b.summary)
	return &b
}

// runBtrfsPass runs the parts again on the btrfs daemons (see onBtrfs).
// A part that fails there is recorded (backendFigures.failed) and the
// next one runs, so that the table shows what the backend does and what
// it cannot; the pass then fails, naming them.
func runBtrfsPass(cfg *config, work string, interrupts chan os.Signal) error {
	bcfg := cfg.onBtrfs()
	cfg.backends = append(cfg.backends, bcfg.backend)
	fmt.Printf("\nctrfs-bench: btrfs backend: the stop/start, snapshot and migration parts again, on daemons whose LXC path is on btrfs (%s)\n", bcfg.lxcpath)
	if st, err := fsType(bcfg.lxcpath); err != nil || st != storageBtrfs {
		return fmt.Errorf("--btrfs-lxcpath %s is not on btrfs (%s, %v)", bcfg.lxcpath, st, err)
	}
	f := bcfg.backend
	pcfg := bcfg.forKind(kindPrivileged)
	if pcfg.parts["stopstart"] || pcfg.parts["snapshots"] {
		if err := runCheckpoint(newBench(pcfg, work, interrupts)); err != nil {
			f.failed[partCheckpoint] = err
			fmt.Fprintf(os.Stderr, "ctrfs-bench: btrfs backend: the %s parts failed: %v\n", partCheckpoint, err)
		}
	}
	if pcfg.parts["migrate"] {
		if pcfg.peerMount == "" {
			fmt.Println("\nctrfs-bench: btrfs backend: migration skipped (no --btrfs-peer-mount)")
		} else if err := runMigration(pcfg, work, interrupts); err != nil {
			f.failed[partMigrate] = err
			fmt.Fprintf(os.Stderr, "ctrfs-bench: btrfs backend: the migration part failed: %v\n", err)
		}
	}
	if len(f.failed) > 0 {
		var parts []string
		for p := range f.failed {
			parts = append(parts, p)
		}
		slices.Sort(parts)
		return fmt.Errorf("btrfs backend: failed: %s (the backends table lists why)", strings.Join(parts, ", "))
	}
	return nil
}

// statelessBench times --runs stateless snapshots of the running container
// (each deleted again and the store let shrink back, so that every one is
// a first snapshot), then takes a series of --snapshots of it idle and
// records what the store grew by after the first and after the last.
// Every snapshot must say it is kept by the backend measured.
func (b *bench) statelessBench(f *backendFigures) error {
	cfg := b.cfg
	if got := tree.Info(b.ctr)["storage"]; got != f.name {
		return fmt.Errorf("%s keeps its rootfs as %q (info storage), and this pass measures the %s backend", b.ctr, got, f.name)
	}
	fmt.Printf("\nctrfs-bench: stateless snapshots, %s backend: %d timing round(s), a series of %d of the idle container\n",
		f.name, cfg.runs, cfg.snapshots)
	base := b.settleStore(-1)
	for i := 1; i <= cfg.runs; i++ {
		name := fmt.Sprintf("%sstateless-%d", snapPrefix, i)
		took, err := b.takeStateless(name, f.name)
		if err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		f.stateless = append(f.stateless, took.Seconds())
		fmt.Fprintf(os.Stderr, "ctrfs-bench: stateless snapshot round %d (%s) %.3fs\n", i, f.name, took.Seconds())
		if err := b.deleteSnapshot(name); err != nil {
			return err
		}
		base = b.settleStore(base)
	}

	fs0 := b.fsUsed(f.name)
	var names []string
	for k := 1; k <= cfg.snapshots; k++ {
		name := fmt.Sprintf("%sstateless-idle-%02d", snapPrefix, k)
		took, err := b.takeStateless(name, f.name)
		if err != nil {
			return fmt.Errorf("idle series: %w", err)
		}
		names = append(names, name)
		growth, fsGrowth := int64(-1), int64(-1)
		if n, err := b.storeBytes(); err == nil && base >= 0 && cfg.store != "" {
			growth = n - base
		}
		if n := b.fsUsed(f.name); n >= 0 && fs0 >= 0 {
			fsGrowth = n - fs0
		}
		if k == 1 {
			f.seriesOne, f.fsOne = growth, fsGrowth
		}
		f.seriesAll, f.fsAll, f.seriesLen = growth, fsGrowth, k
		fmt.Fprintf(os.Stderr, "ctrfs-bench: idle stateless snapshot %2d (%s) %.3fs, store grown by %s, filesystem by %s\n",
			k, f.name, took.Seconds(), bytesMiB(growth), bytesMiB(fsGrowth))
	}
	for _, n := range names {
		if err := b.deleteSnapshot(n); err != nil {
			return err
		}
	}
	b.settleStore(base)
	return nil
}

// takeStateless times `snapshot NAME` written to ctl, and checks that the
// container still runs and the snapshot is a stateless one kept by the
// backend want.
func (b *bench) takeStateless(name, want string) (time.Duration, error) {
	info, took, err := b.snapshotCtl(name, "", "stateless")
	if err != nil {
		return took, err
	}
	if info["storage"] != want {
		return took, fmt.Errorf("snapshot %s: storage %q, want %s (info: %v)", name, info["storage"], want, info)
	}
	return took, nil
}

// fsUsed is the used bytes of the btrfs filesystem that holds the LXC
// path, after a sync so that the snapshots' metadata is written; -1 for
// the directory backend, whose disk other jobs share.
func (b *bench) fsUsed(backend string) int64 {
	if backend != storageBtrfs {
		return -1
	}
	fd, err := unix.Open(b.cfg.lxcpath, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if unix.Syncfs(fd) != nil || unix.Fstatfs(fd, &st) != nil {
		return -1
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// fsType is "btrfs" for a path on btrfs, else the filesystem's magic.
func fsType(path string) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", err
	}
	if st.Type == unix.BTRFS_SUPER_MAGIC {
		return storageBtrfs, nil
	}
	return fmt.Sprintf("filesystem magic %#x", st.Type), nil
}

// backendsReport prints the backends table: per figure, a row per backend
// with ctrfs's and the raw side's min/median/max, the ratio of the
// medians, and the target with met or NOT met; then how many targets each
// backend met. A figure whose part did not run says so.
func backendsReport(w io.Writer, cfg *config, backends []*backendFigures, where string) {
	if len(backends) == 0 {
		return
	}
	fmt.Fprintf(w, "\nstorage backends (issue 22), %s template, privileged container, %d round(s), %d MiB memhog\nmeasured on %s\n",
		cfg.template, cfg.runs, cfg.mib, where)
	fmt.Fprintf(w, "%-44s %-7s %23s %23s %8s  %s\n", "seconds, min/median/max", "backend", "ctrfs", "raw lxc-checkpoint", "ratio", "target")
	metCount := map[string][2]int{} // backend: met, measured
	verdict := func(backend string, ok bool) string {
		c := metCount[backend]
		c[1]++
		if ok {
			c[0]++
		}
		metCount[backend] = c
		return met(ok)
	}
	// notRun is why a figure of f is missing: its part failed, or did
	// not run.
	notRun := func(f *backendFigures, part string) string {
		if f.failed[part] != nil {
			return "FAILED (below)"
		}
		return "not run"
	}
	// absolute: the median of ct against a bound in seconds.
	absolute := func(label, part string, bound float64, of func(*backendFigures) []float64) {
		for i, f := range backends {
			ct := of(f)
			v := notRun(f, part)
			if spread(ct) != "n/a" {
				v = verdict(f.name, median(ct) < bound)
			} else if len(ct) > 0 {
				v = "not measured"
			}
			fmt.Fprintf(w, "%-44s %-7s %23s %23s %8s  < %.1f s: %s\n", labelOnce(label, i), f.name, spreadOrNotRun(ct), "", "", bound, v)
		}
	}
	// relative: the median of ct against the median of raw.
	relative := func(label, part string, target float64, of func(*backendFigures) (ct, raw []float64)) {
		for i, f := range backends {
			ct, raw := of(f)
			ratio, v := "n/a", notRun(f, part)
			if len(ct) > 0 && len(raw) > 0 {
				v = "not measured"
				if median(raw) > 0 && spread(ct) != "n/a" && spread(raw) != "n/a" {
					r := median(ct) / median(raw)
					ratio = fmt.Sprintf("%.2fx", r)
					v = verdict(f.name, r <= target)
				}
			}
			fmt.Fprintf(w, "%-44s %-7s %23s %23s %8s  <= %.1fx: %s\n", labelOnce(label, i), f.name, spreadOrNotRun(ct), spreadOrNotRun(raw), ratio, target, v)
		}
	}
	absolute("stateless snapshot (whole operation)", partCheckpoint, targetStatelessSeconds,
		func(f *backendFigures) []float64 { return f.stateless })
	absolute("restore NAME, stateful (whole operation)", partCheckpoint, targetRestoreSeconds,
		func(f *backendFigures) []float64 { return f.sum.restore })
	relative("restore NAME, service down (raw: -r)", partCheckpoint, targetRestoreDownRatio,
		func(f *backendFigures) ([]float64, []float64) { return f.sum.restoreGap, f.sum.rawRestore })
	relative("stateful snapshot, frozen (CRIU's figure)", partCheckpoint, targetBackendFrozenRatio,
		func(f *backendFigures) ([]float64, []float64) { return f.sum.frozen, f.sum.rawFrozen })
	relative("live move downtime (raw: -s + -r in place)", partMigrate, targetBackendLiveRatio,
		func(f *backendFigures) ([]float64, []float64) { return f.sum.live, f.sum.rawInPlace })
	fmt.Fprintln(w, "(service down, live move downtime: the longest gap between answers of the container's counter, as a client")
	fmt.Fprintln(w, " saw it; raw -r: lxc-checkpoint -r from a plain directory, from the stop/start part's raw rounds; -s + -r in")
	fmt.Fprintln(w, " place: the migration part's floor; frozen: CRIU's frozen time of snapshot --stateful and of a raw dump without -s)")

	fmt.Fprintf(w, "\n%-44s %-7s %23s %23s %8s  %s\n", "stateless snapshots of the idle container", "backend", "store bytes, 1", "store bytes, all", "all/1", "target")
	for i, f := range backends {
		ratio, v := "n/a", notRun(f, partCheckpoint)
		if f.seriesLen > 0 {
			v = "not measured"
			if f.seriesOne > 0 && f.seriesAll >= 0 {
				r := float64(f.seriesAll) / float64(f.seriesOne)
				ratio = fmt.Sprintf("%.2fx", r)
				v = verdict(f.name, r <= targetStatelessSeriesRatio)
			}
		}
		label := labelOnce(fmt.Sprintf("series of %d (du of the chunk store)", f.seriesLen), i)
		fmt.Fprintf(w, "%-44s %-7s %23s %23s %8s  <= %.1fx: %s\n", label, f.name, bytesMiB(f.seriesOne), bytesMiB(f.seriesAll), ratio, targetStatelessSeriesRatio, v)
	}
	for _, f := range backends {
		if f.fsOne >= 0 && f.fsAll >= 0 {
			fmt.Fprintf(w, "(%s: the filesystem's used bytes grew by %s after the first, %s after the last: the snapshot subvolumes, outside the store)\n",
				f.name, bytesMiB(f.fsOne), bytesMiB(f.fsAll))
		}
	}
	var tally []string
	for _, f := range backends {
		c := metCount[f.name]
		tally = append(tally, fmt.Sprintf("%s %d of %d", f.name, c[0], c[1]))
	}
	fmt.Fprintf(w, "targets met (of those measured): %s\n", strings.Join(tally, ", "))
	for _, f := range backends {
		for _, part := range []string{partCheckpoint, partMigrate} {
			if err := f.failed[part]; err != nil {
				fmt.Fprintf(w, "\n%s backend, %s part(s) FAILED: %v\n", f.name, part, err)
			}
		}
	}
}

// labelOnce is label on a figure's first row, blank on the rows after it.
func labelOnce(label string, i int) string {
	if i > 0 {
		return ""
	}
	return label
}

func spreadOrNotRun(v []float64) string {
	if len(v) == 0 {
		return "not run"
	}
	return spread(v)
}
