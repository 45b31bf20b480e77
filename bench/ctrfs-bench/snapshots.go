package main

// The snapshot benchmark (issue 4), run after the stop/start rounds on the
// same running container:
//
//  1. time: in --runs alternating rounds, raw `lxc-checkpoint -D DIR`
//     without -s (CRIU dumps and leaves the container running) against
//     `snapshot NAME --stateful` written to ctl. Each timed snapshot is
//     deleted again and the store let shrink back before the next round, so
//     every one of them is a first snapshot into a store that holds none of
//     the memory, like the raw dump that writes everything.
//  2. storage: a series of --snapshots stateful snapshots with the container
//     idle, then (after deleting those) a series with --rewrite-percent of
//     memhog's memory rewritten before each snapshot after the first. The
//     cost is the growth of `du -sb STORE/images/chunks` over the store
//     before the series, and each snapshot's `stored` from its info.
//  3. restore: in --runs rounds, `restore NAME` of the second series' first
//     and last snapshot in turn; every restore changes memhog's memory, and
//     the check after it wants the pid and the checksum of that snapshot.
//
// The snapshots' own names all start with snapPrefix; the run deletes them
// (rmdir) at the end, also after a failure.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ctrfs/images/critview"
	"ctrfs/internal/tree"
)

// The target: N stateful snapshots of an idle container cost at most
// twice what one costs.
const targetIdleSeriesRatio = 2.0

const snapPrefix = "bench-"

// snapTiming is one side of one timing round.
type snapTiming struct {
	run      int
	side     string // "raw" or "ctrfs"
	dump     time.Duration
	frozen   float64 // CRIU's frozen time (the service stalls); -1 unknown
	gap      float64 // the longest the counter's clients waited; -1 not probed
	rawBytes int64   // raw: the dump directory
	size     int64   // ctrfs: info size (logical bytes)
	stored   int64   // ctrfs: info stored; -1 unknown
	growth   int64   // ctrfs: du growth of the chunk store; -1 unknown
}

// seriesPoint is one snapshot of a storage series.
type seriesPoint struct {
	idx    int
	name   string
	took   time.Duration
	size   int64
	stored int64 // info stored; -1 unknown
	growth int64 // du of the chunk store over the series' baseline; -1 unknown
	sum    string
}

type restoreSample struct {
	run  int
	name string
	took time.Duration
	gap  float64 // the longest the counter's clients waited; -1 not probed
	sum  string
}

type snapResults struct {
	timing        []snapTiming
	idle, rewrite []seriesPoint
	restores      []restoreSample
	rewriteBytes  int64 // bytes memhog rewrote per rewrite
	rawRestore    float64
	ctrfsStart    float64 // medians from the stop/start rounds; 0 unknown
	leftover      int64   // du growth after deleting everything; -1 unknown
}

func (b *bench) snapshotBench(stopStart []sample) (*snapResults, error) {
	cfg := b.cfg
	res := &snapResults{leftover: -1}
	var rr, cs []float64
	for _, s := range stopStart {
		if s.side == "raw" {
			rr = append(rr, s.restore.Seconds())
		} else {
			cs = append(cs, s.restore.Seconds())
		}
	}
	res.rawRestore, res.ctrfsStart = median(rr), median(cs)

	if cfg.rawOnly {
		fmt.Printf("\nctrfs-bench: stateful snapshots: %d timing round(s) of raw lxc-checkpoint without -s only (--raw-only)\n", cfg.runs)
	} else {
		fmt.Printf("\nctrfs-bench: stateful snapshots: %d timing round(s), series of %d (idle, then %g%% %s rewritten between snapshots), %d restore(s)\n",
			cfg.runs, cfg.snapshots, cfg.rewritePct, cfg.rewritePattern, cfg.runs)
	}
	if cfg.store == "" {
		fmt.Println("ctrfs-bench: no --store: storage from the snapshots' info only, not from du")
	}
	if !cfg.rawOnly {
		// Leftovers of an interrupted earlier run on a --keep container.
		if names, err := b.snapshotNames(); err == nil {
			for _, n := range names {
				if strings.HasPrefix(n, snapPrefix) {
					b.snaps[n] = true
				}
			}
		}
		if err := b.deleteSnapshots(); err != nil {
			return nil, err
		}
	}
	// The stop/start rounds dropped their saved state; the daemon collects
	// its chunks in the background.
	base := b.settleStore(-1)

	// 1. Time, alternating. A debian container's counter is probed
	// meanwhile (busybox's nc would make freezes fail, see retryable).
	if cfg.template == templateDebian {
		b.probe = startProber(net.JoinHostPort(tree.Info(b.ctr)["ipv4"], "8080"), cfg.probeInterval)
		if _, err := b.probe.waitAnswer(time.Now(), 30*time.Second); err != nil {
			return nil, err
		}
	}
	defer b.stopProbe()
	for i := 1; i <= cfg.runs; i++ {
		t, err := b.rawLiveDump(i)
		if err != nil {
			return nil, fmt.Errorf("round %d, raw lxc-checkpoint without -s: %w", i, err)
		}
		res.timing = append(res.timing, t)
		fmt.Fprintf(os.Stderr, "ctrfs-bench: snapshot round %d raw   dump %.3fs (still running, frozen %ss, clients waited %ss) raw %s, memhog intact\n",
			i, t.dump.Seconds(), secondsOrUnknown(t.frozen), secondsOrUnknown(t.gap), bytesMiB(t.rawBytes))
		if cfg.rawOnly {
			continue
		}
		name := fmt.Sprintf("%stime-%d", snapPrefix, i)
		seq := b.lastSeq()
		t0 := time.Now()
		p, err := b.takeSnapshot(name, base)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", i, err)
		}
		gap := b.stall(t0, time.Now())
		if _, err := b.checkMemhog(seq); err != nil {
			return nil, fmt.Errorf("round %d, after snapshot %s: %w", i, name, err)
		}
		frozen := parseFloat(tree.Info(b.ctr)["criu-frozen-seconds"])
		res.timing = append(res.timing, snapTiming{run: i, side: "ctrfs", dump: p.took, frozen: frozen, gap: gap, size: p.size, stored: p.stored, growth: p.growth})
		fmt.Fprintf(os.Stderr, "ctrfs-bench: snapshot round %d ctrfs dump %.3fs (still running, frozen %ss, clients waited %ss) size %s stored %s, memhog intact\n",
			i, p.took.Seconds(), secondsOrUnknown(frozen), secondsOrUnknown(gap), bytesMiB(p.size), bytesMiB(p.stored))
		fmt.Fprintf(os.Stderr, "ctrfs-bench:   phases (s): %s\n", strings.Join(phasesOf(tree.Info(b.ctr),
			"criu-frozen-seconds", "criu-memdump-seconds", "criu-memwrite-seconds", "dump-seconds", "store-seconds", "last-op-seconds"), " "))
		if err := b.deleteSnapshot(name); err != nil {
			return nil, err
		}
		base = b.settleStore(base)
	}
	b.stopProbe()
	if cfg.rawOnly {
		return res, nil
	}

	// 2. Storage: idle.
	var err error
	if res.idle, err = b.series("idle", false, base); err != nil {
		return nil, err
	}
	for _, p := range res.idle {
		if err := b.deleteSnapshot(p.name); err != nil {
			return nil, err
		}
	}
	base = b.settleStore(base)

	// 2. Storage: memory rewritten between snapshots.
	if res.rewrite, err = b.series("rewrite", true, base); err != nil {
		return nil, err
	}
	if kv := tree.ReadKV(filepath.Join(b.memhogDir(), "rewrite")); kv["bytes"] != "" {
		res.rewriteBytes, _ = strconv.ParseInt(kv["bytes"], 10, 64)
	}

	// 3. Restore, oldest and newest snapshot of the rewrite series in turn:
	// the container is at the newest when the series ends. A debian
	// container's counter is probed again: the rootfs is unpacked while
	// the container runs, and only the rest keeps its service down.
	if cfg.template == templateDebian {
		b.probe = startProber(net.JoinHostPort(tree.Info(b.ctr)["ipv4"], "8080"), cfg.probeInterval)
		if _, err := b.probe.waitAnswer(time.Now(), 30*time.Second); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= cfg.runs; i++ {
		p := res.rewrite[0]
		if i%2 == 0 {
			p = res.rewrite[len(res.rewrite)-1]
		}
		r, err := b.restoreSnapshot(i, p)
		if err != nil {
			return nil, fmt.Errorf("restore %d: %w", i, err)
		}
		res.restores = append(res.restores, r)
		fmt.Fprintf(os.Stderr, "ctrfs-bench: restore %d of %s %.3fs (clients waited %ss), memhog intact as snapshotted (%s); phases (s): %s\n",
			i, p.name, r.took.Seconds(), secondsOrUnknown(r.gap), r.sum,
			strings.Join(phasesOf(tree.Info(b.ctr), "unpack-seconds", "stop-seconds", "criu-restore-seconds", "last-op-seconds"), " "))
	}

	b.stopProbe()
	if err := b.deleteSnapshots(); err != nil {
		return nil, err
	}
	if cfg.store != "" {
		res.leftover = b.settleStore(base) - base
	}
	return res, nil
}

// rawLiveDump times `lxc-checkpoint -D DIR` without -s into a fresh
// directory, measures the images and checks that memhog runs on untouched.
func (b *bench) rawLiveDump(i int) (snapTiming, error) {
	t := snapTiming{run: i, side: "raw", frozen: -1, gap: -1, stored: -1, growth: -1}
	if err := b.checkInterrupt(); err != nil {
		return t, err
	}
	dir, err := os.MkdirTemp(b.cfg.dumpDir, "ctrfs-bench-live-")
	if err != nil {
		return t, err
	}
	defer os.RemoveAll(dir)
	seq := b.lastSeq()
	t0 := time.Now()
	if err := b.lxcCheckpoint(fmt.Sprintf("raw-live-dump-%d", i), nil, dir); err != nil {
		return t, fmt.Errorf("%w%s", err, logTail(filepath.Join(dir, "dump.log")))
	}
	t.dump = time.Since(t0)
	t.gap = b.stall(t0, time.Now())
	if st, err := critview.Stats(os.DirFS(dir), "stats-dump"); err == nil && st.GetDump() != nil {
		t.frozen = float64(st.GetDump().GetFrozenTime()) / 1e6
	}
	if st, err := tree.Status(b.ctr); err != nil || st != "RUNNING" {
		return t, fmt.Errorf("container is %q after the dump, not RUNNING (%v)", st, err)
	}
	if t.rawBytes, err = dirBytes(dir, nil); err != nil {
		return t, err
	}
	if _, err := b.checkMemhog(seq); err != nil {
		return t, err
	}
	return t, nil
}

// stall is the longest the counter's clients waited between answers from
// t0 until the first answer after t1; -1 if the counter is not probed.
func (b *bench) stall(t0, t1 time.Time) float64 {
	if b.probe == nil {
		return -1
	}
	back, err := b.probe.waitAnswer(t1, 30*time.Second)
	if err != nil {
		return -1
	}
	gap, _, _, ok := b.probe.gap(t0, back.at)
	if !ok {
		return -1
	}
	return gap.Seconds()
}

func (b *bench) stopProbe() {
	if b.probe != nil {
		b.probe.close()
		b.probe = nil
	}
}

// takeSnapshot times `snapshot NAME --stateful`, checks that the container
// still runs, and reads the snapshot's info and the store's growth over base.
func (b *bench) takeSnapshot(name string, base int64) (seriesPoint, error) {
	p := seriesPoint{name: name, stored: -1, growth: -1, sum: b.readySum}
	info, took, err := b.snapshotCtl(name, " --stateful", "stateful")
	p.took = took
	if err != nil {
		return p, err
	}
	path := filepath.Join(b.ctr, "snapshots", name, "info")
	if p.size, err = strconv.ParseInt(info["size"], 10, 64); err != nil {
		return p, fmt.Errorf("%s: size %q: %v", path, info["size"], err)
	}
	if n, err := strconv.ParseInt(info["stored"], 10, 64); err == nil {
		p.stored = n
	}
	if b.cfg.store != "" && base >= 0 {
		if n, err := b.storeBytes(); err == nil {
			p.growth = n - base
		}
	}
	return p, nil
}

// snapshotCtl times `snapshot NAME` with flags written to ctl, checks that
// the container still runs and that the snapshot's info says kind, and
// returns that info.
func (b *bench) snapshotCtl(name, flags, kind string) (map[string]string, time.Duration, error) {
	if err := b.checkInterrupt(); err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	err := tree.Ctl(b.ctr, "snapshot "+name+flags)
	took := time.Since(t0)
	if err != nil {
		return nil, took, err
	}
	b.snaps[name] = true
	if st, err := tree.Status(b.ctr); err != nil || st != "RUNNING" {
		return nil, took, fmt.Errorf("container is %q after snapshot %s%s, not RUNNING (%v)", st, name, flags, err)
	}
	path := filepath.Join(b.ctr, "snapshots", name, "info")
	info := tree.ReadKV(path)
	if info["kind"] != kind {
		return nil, took, fmt.Errorf("%s: kind %q, want %s (info: %v)", path, info["kind"], kind, info)
	}
	return info, took, nil
}

// series takes --snapshots stateful snapshots, rewriting memhog's memory
// before each after the first if rewrite is set, and checks memhog at the
// end.
func (b *bench) series(label string, rewrite bool, base int64) ([]seriesPoint, error) {
	var out []seriesPoint
	seq := b.lastSeq()
	for k := 1; k <= b.cfg.snapshots; k++ {
		if rewrite && k > 1 {
			if err := b.rewriteMemhog(); err != nil {
				return out, fmt.Errorf("%s series, before snapshot %d: %w", label, k, err)
			}
		}
		name := fmt.Sprintf("%s%s-%02d", snapPrefix, label, k)
		p, err := b.takeSnapshot(name, base)
		if err != nil {
			return out, fmt.Errorf("%s series: %w", label, err)
		}
		p.idx = k
		out = append(out, p)
		fmt.Fprintf(os.Stderr, "ctrfs-bench: %-7s snapshot %2d %.3fs stored %s, store grown by %s; CRIU (s): %s\n",
			label, k, p.took.Seconds(), bytesMiB(p.stored), bytesMiB(p.growth),
			strings.Join(phasesOf(tree.Info(b.ctr), "criu-frozen-seconds", "criu-memdump-seconds", "criu-memwrite-seconds"), " "))
	}
	if _, err := b.checkMemhog(seq); err != nil {
		return out, fmt.Errorf("after the %s series: %w", label, err)
	}
	return out, nil
}

// restoreSnapshot times `restore NAME` and checks that memhog came back as
// the snapshot took it: the same pid, the snapshot's checksum. The rootfs
// (and with it memhog's sum file) is rolled back too, so the sequence
// number to beat is read after the restore.
func (b *bench) restoreSnapshot(i int, p seriesPoint) (restoreSample, error) {
	r := restoreSample{run: i, name: p.name}
	if err := b.checkInterrupt(); err != nil {
		return r, err
	}
	t0 := time.Now()
	var err error
	if r.took, err = b.ctlUntil("restore "+p.name, "RUNNING"); err != nil {
		return r, err
	}
	r.gap = b.stall(t0, time.Now())
	b.readySum = p.sum
	seq := b.lastSeq()
	if r.sum, err = b.checkMemhog(seq); err != nil {
		return r, fmt.Errorf("after restore %s: %w", p.name, err)
	}
	return r, nil
}

// rewriteMemhog has memhog rewrite its share of memory (SIGUSR1) and takes
// the checksum it reports afterwards as the one to verify against.
func (b *bench) rewriteMemhog() error {
	path := filepath.Join(b.memhogDir(), "rewrite")
	gen, _ := strconv.Atoi(tree.ReadKV(path)["gen"])
	pid, err := b.memhogHostPid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("signal memhog (host pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		kv := tree.ReadKV(path)
		if n, err := strconv.Atoi(kv["gen"]); err == nil && n > gen && kv["sum"] != "" {
			if kv["pid"] != b.readyPid {
				return fmt.Errorf("the rewrite was done by pid %s, not memhog's %s", kv["pid"], b.readyPid)
			}
			b.readySum = kv["sum"]
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("memhog did not report a rewrite within 30s (last %v)", kv)
		}
		if err := b.checkInterrupt(); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memhogHostPid finds memhog's pid on the host: the process in the pid
// namespace of the container's init whose pid in that namespace is
// memhog's.
func (b *bench) memhogHostPid() (int, error) {
	initPid := tree.Info(b.ctr)["pid"]
	if initPid == "" {
		return 0, errors.New("the container's info has no pid")
	}
	ns, err := os.Readlink("/proc/" + initPid + "/ns/pid")
	if err != nil {
		return 0, fmt.Errorf("pid namespace of the container's init: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if n, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err != nil || n != ns {
			continue
		}
		status, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f, ok := strings.CutPrefix(line, "NSpid:"); ok {
				ids := strings.Fields(f)
				if len(ids) > 0 && ids[len(ids)-1] == b.readyPid {
					return pid, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no process with pid %s in the container's pid namespace", b.readyPid)
}

func (b *bench) snapshotNames() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(b.ctr, "snapshots"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

func (b *bench) deleteSnapshot(name string) error {
	if err := os.Remove(filepath.Join(b.ctr, "snapshots", name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rmdir snapshots/%s: %w%s", name, err, tree.ErrorSuffix(b.ctr))
	}
	delete(b.snaps, name)
	return nil
}

// deleteSnapshots removes every snapshot this run took and has not deleted
// yet; it tries them all and returns the first error.
func (b *bench) deleteSnapshots() error {
	var names []string
	for n := range b.snaps {
		names = append(names, n)
	}
	sort.Strings(names)
	var first error
	for _, n := range names {
		if err := b.deleteSnapshot(n); err != nil {
			fmt.Fprintln(os.Stderr, "ctrfs-bench: cleanup:", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// storeBytes is `du -sb STORE/images/chunks`.
func (b *bench) storeBytes() (int64, error) {
	dir := filepath.Join(b.cfg.store, "images", "chunks")
	out, err := exec.Command("du", "-sb", dir).Output()
	if err != nil {
		return 0, fmt.Errorf("du -sb %s: %w", dir, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("du -sb %s: no output", dir)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// settleStore waits until the daemon's background garbage collection is
// done: the chunk store's size has not changed for 1.5s and, if target >= 0,
// is back within 1 MiB of target. It gives up after a minute and says so.
// Without --store it returns -1 at once.
func (b *bench) settleStore(target int64) int64 {
	if b.cfg.store == "" {
		return -1
	}
	last, same := int64(-1), 0
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := b.storeBytes()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ctrfs-bench:", err)
			return -1
		}
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		if same >= 3 && (target < 0 || n <= target+1<<20) {
			return n
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "ctrfs-bench: the chunk store did not settle back to %s within a minute: it holds %s\n",
				bytesMiB(target), bytesMiB(n))
			return n
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// reportSnapshots prints the second table: every timing round and every
// snapshot of the series, then medians, the storage of 1 and N snapshots
// and the ratios.
func reportSnapshots(w io.Writer, cfg *config, r *snapResults) {
	fmt.Fprintf(w, "\nstateful snapshots, %d MiB memhog, %d timing round(s), series of %d\n", cfg.mib, cfg.runs, cfg.snapshots)
	fmt.Fprintln(w, "(a ctrfs snapshot also archives the rootfs and config and puts it all in the store; the raw dump writes CRIU images only)")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-5s %-26s %9s %9s %14s %14s %14s %14s\n", "run", "live dump (keeps running)", "dump s", "frozen s", "raw bytes", "size bytes", "stored bytes", "store growth")
	for _, t := range r.timing {
		side := "raw lxc-checkpoint (no -s)"
		if t.side == "ctrfs" {
			side = "ctrfs snapshot --stateful"
		}
		raw, size := bytesOrNA(t.rawBytes), bytesOrNA(t.size)
		if t.side == "raw" {
			size = ""
		} else {
			raw = ""
		}
		fmt.Fprintf(w, "%-5d %-26s %9.3f %9s %14s %14s %14s %14s\n", t.run, side, t.dump.Seconds(), secondsOrUnknown(t.frozen), raw, size,
			blankNA(t.side == "raw", t.stored), blankNA(t.side == "raw", t.growth))
	}
	var rawT, snapT, rawF, snapF []float64
	for _, t := range r.timing {
		if t.side == "raw" {
			rawT, rawF = append(rawT, t.dump.Seconds()), append(rawF, t.frozen)
		} else {
			snapT, snapF = append(snapT, t.dump.Seconds()), append(snapF, t.frozen)
		}
	}
	// The frozen time is what the container's users notice: its service
	// does not answer meanwhile. A ctrfs snapshot's includes archiving
	// what changed in the rootfs since the archive made before the freeze.
	fmt.Fprintf(w, "\n%-40s %23s %23s\n", "min/median/max seconds", "dump (keeps running)", "frozen (CRIU's figure)")
	fmt.Fprintf(w, "%-40s %23s %23s\n", "raw lxc-checkpoint -D, no -s", spread(rawT), spread(rawF))
	if !cfg.rawOnly {
		fmt.Fprintf(w, "%-40s %23s %23s\n", "ctrfs snapshot --stateful", spread(snapT), spread(snapF))
	}
	if cfg.rawOnly {
		fmt.Fprintf(w, "\nmedian raw lxc-checkpoint without -s: %.3f s\nctrfs snapshot: n/a (--raw-only)\n", median(rawT))
		return
	}

	rewriteLabel := fmt.Sprintf("%g%% %s", cfg.rewritePct, cfg.rewritePattern)
	fmt.Fprintf(w, "\n%-26s %4s %9s %14s %14s %22s\n", "series", "snap", "seconds", "size bytes", "stored bytes", "store growth (du)")
	for _, s := range []struct {
		label string
		pts   []seriesPoint
	}{{"idle", r.idle}, {rewriteLabel + " rewritten", r.rewrite}} {
		for _, p := range s.pts {
			fmt.Fprintf(w, "%-26s %4d %9.3f %14d %14s %22s\n", s.label, p.idx, p.took.Seconds(), p.size, bytesOrNA(p.stored), bytesMiB(p.growth))
		}
	}

	var warm []float64
	for _, p := range r.idle[1:] {
		warm = append(warm, p.took.Seconds())
	}
	var rest []float64
	for _, x := range r.restores {
		rest = append(rest, x.took.Seconds())
	}
	fmt.Fprintf(w, "\n%-56s %9s\n", "median", "seconds")
	fmt.Fprintf(w, "%-56s %9.3f\n", "raw lxc-checkpoint -D, no -s (floor)", median(rawT))
	fmt.Fprintf(w, "%-56s %9.3f\n", "ctrfs snapshot --stateful, first (store without it)", median(snapT))
	if len(warm) > 0 {
		fmt.Fprintf(w, "%-56s %9.3f\n", fmt.Sprintf("ctrfs snapshot --stateful, idle 2..%d (previous kept)", len(r.idle)), median(warm))
	}
	fmt.Fprintf(w, "%-56s %9s\n", "raw lxc-checkpoint -r, from stopped (table above)", secondsOrNA(r.rawRestore))
	fmt.Fprintf(w, "%-56s %9s\n", "ctrfs start from saved state (table above)", secondsOrNA(r.ctrfsStart))
	fmt.Fprintf(w, "%-56s %9.3f\n", "ctrfs restore NAME, stateful, from running", median(rest))

	fmt.Fprintf(w, "\n%-30s %22s %22s %9s\n", "stored bytes", "1 snapshot", fmt.Sprintf("%d snapshots", cfg.snapshots), fmt.Sprintf("%d/1", cfg.snapshots))
	for _, s := range []struct {
		label string
		pts   []seriesPoint
	}{{"idle", r.idle}, {rewriteLabel + " rewritten", r.rewrite}} {
		one, all := seriesCost(s.pts, 1), seriesCost(s.pts, len(s.pts))
		ratio := "n/a"
		if one > 0 && all >= 0 {
			ratio = fmt.Sprintf("%.3fx", float64(all)/float64(one))
		}
		fmt.Fprintf(w, "%-30s %22s %22s %9s\n", s.label, bytesMiB(one), bytesMiB(all), ratio)
	}
	if r.rewriteBytes > 0 {
		fmt.Fprintf(w, "(each rewrite: %s of fresh random bytes; %d rewrites in the series)\n", bytesMiB(r.rewriteBytes), cfg.snapshots-1)
	}
	if cfg.store != "" {
		fmt.Fprintln(w, "(stored bytes: growth of du -sb STORE/images/chunks over the store before the series)")
	} else {
		fmt.Fprintln(w, "(stored bytes: sum of the snapshots' info `stored`; no --store for du)")
	}

	fmt.Fprintln(w)
	rawMed := median(rawT)
	fmt.Fprintf(w, "snapshot/raw live dump time:        %.3fx\n", median(snapT)/rawMed)
	if r.rawRestore > 0 {
		fmt.Fprintf(w, "restore NAME/raw restore time:      %.3fx\n", median(rest)/r.rawRestore)
	}
	one, all := seriesCost(r.idle, 1), seriesCost(r.idle, len(r.idle))
	if one > 0 && all >= 0 {
		ratio := float64(all) / float64(one)
		fmt.Fprintf(w, "idle: %d snapshots / 1 snapshot:    %.3fx   target <= %.2fx   %s\n", cfg.snapshots, ratio, targetIdleSeriesRatio, met(ratio <= targetIdleSeriesRatio))
	} else {
		fmt.Fprintf(w, "idle: %d snapshots / 1 snapshot:    n/a     target <= %.2fx   not measured\n", cfg.snapshots, targetIdleSeriesRatio)
	}
	if r.leftover >= 0 {
		fmt.Fprintf(w, "store after deleting every snapshot: %s over the start\n", bytesMiB(r.leftover))
	}
}

// seriesCost is what the first n snapshots of a series cost the store: the
// du growth after the nth, or without du the sum of their info `stored`.
func seriesCost(pts []seriesPoint, n int) int64 {
	if n < 1 || n > len(pts) {
		return -1
	}
	if pts[n-1].growth >= 0 {
		return pts[n-1].growth
	}
	var sum int64
	for _, p := range pts[:n] {
		if p.stored < 0 {
			return -1
		}
		sum += p.stored
	}
	return sum
}

// blankNA is n as bytesOrNA, or empty when blank (a column that does not
// apply to the row's side).
func blankNA(blank bool, n int64) string {
	if blank {
		return ""
	}
	return bytesOrNA(n)
}

// secondsOrNA formats a median that may be missing (0: its part did not run).
func secondsOrNA(v float64) string {
	if v <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", v)
}
