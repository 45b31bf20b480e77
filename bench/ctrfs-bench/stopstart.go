package main

// The stop/start part (--only stopstart): in alternating rounds on one
// container, the floor (raw `lxc-checkpoint -s`, then `lxc-checkpoint -r`)
// against ctrfs (`stop-stateful`, then `start`, written to its ctl), with
// the bytes each side stored; the first table.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"ctrfs/internal/tree"
)

// The targets of the issue: ctrfs within 1.15x of raw time while storing at
// most half of the raw image bytes.
const (
	targetTimeRatio  = 1.15
	targetBytesRatio = 0.5
)

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

// runCheckpoint runs the stop/start and snapshot parts on one container.
func runCheckpoint(b *bench) error {
	cfg := b.cfg
	fmt.Printf("ctrfs-bench: %s %s container %q on %s, memhog holding %d MiB (half random, half text), %d round(s)%s\n",
		kindOf(cfg), cfg.template, cfg.name, cfg.mount, cfg.mib, cfg.runs, map[bool]string{true: ", raw only", false: ", alternating raw and ctrfs"}[cfg.rawOnly])

	created, err := b.setup()
	if created && !cfg.keep {
		defer b.destroy()
	}
	if err != nil {
		return err
	}

	// Comparing storage backends: stateless snapshots of the container
	// as booted, first, since they need no CRIU (backends.go).
	if cfg.parts["snapshots"] && cfg.backend != nil && !cfg.rawOnly {
		defer b.deleteSnapshots()
		if err := b.statelessBench(cfg.backend); err != nil {
			return fmt.Errorf("stateless snapshots: %w", err)
		}
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
	if err := b.prepareRawRestore(); err != nil {
		return s, err
	}

	t0 := time.Now()
	if err := b.lxcCheckpoint(fmt.Sprintf("raw-dump-%d", i), nil, dir, "-s"); err != nil {
		return s, fmt.Errorf("lxc-checkpoint -s: %w%s", err, logTail(filepath.Join(dir, "dump.log")))
	}
	if err := tree.WaitStatus(b.ctr, "STOPPED", statusTimeout); err != nil {
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
	// Part of the raw restore's time: an operator has to do it too.
	if err := b.rawImagesReadable(dir); err != nil {
		return s, b.rescue(err, dir)
	}
	if err := b.lxcCheckpoint(fmt.Sprintf("raw-restore-%d", i), []string{"CRIU_CONFIG_FILE=" + b.criuConf}, dir, "-r"); err != nil {
		return s, fmt.Errorf("lxc-checkpoint -r: %w%s", err, logTail(filepath.Join(dir, "restore.log")))
	}
	if err := tree.WaitStatus(b.ctr, "RUNNING", statusTimeout); err != nil {
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
	if err := b.rawImagesReadable(dir); err != nil {
		return fmt.Errorf("%w; restoring the raw checkpoint afterwards failed too: %v", cause, err)
	}
	if err := b.lxcCheckpoint("raw-rescue", []string{"CRIU_CONFIG_FILE=" + b.criuConf}, dir, "-r"); err != nil {
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
	var err error
	if s.dump, err = b.ctlUntil("stop-stateful", "STOPPED"); err != nil {
		return s, err
	}

	info := tree.Info(b.ctr)
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

	if s.restore, err = b.ctlUntil("start", "RUNNING"); err != nil {
		return s, err
	}
	s.phases = append(s.phases, phasesOf(tree.Info(b.ctr), "criu-restore-time-seconds", "criu-restore-seconds")...)
	if s.sumAfterRestore, err = b.checkMemhog(seq); err != nil {
		return s, fmt.Errorf("after start: %w", err)
	}
	return s, nil
}

// report prints every run, the medians, the ratios and the targets.
func report(w io.Writer, cfg *config, samples []sample) {
	fmt.Fprintf(w, "\nstateful stop and start, %s container, %d MiB memhog, %d round(s)\n\n", kindOf(cfg), cfg.mib, cfg.runs)
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
