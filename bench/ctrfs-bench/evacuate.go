package main

// The evacuation benchmark (issue 14, item 6), on the two hosts of the
// migration part: N running busybox containers (the default template, its
// counter service) are evacuated with `echo evacuate > ctl` at the top of
// the mount of the host that has them, to the other host, and back, --runs
// times, for N in --evacuate-counts (growing: the containers of a smaller
// N are kept and more are added). It reports the time of the whole write
// (min / median / max over the rounds), the time per container, and the
// downtime of each container as ctrfs measures it (downtime-seconds in
// the target's info: from the checkpoint until the target restored it):
// median and max over every container of every round. After every round
// every container must be on the target alone, RUNNING.

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"ctrfs/internal/tree"
)

type evacSample struct {
	n         int
	from, to  string
	total     time.Duration
	downtimes []float64
}

func runEvacuate(cfg *config) error {
	if cfg.peerMount == "" {
		fmt.Println("\nctrfs-bench: evacuate: skipped (no --peer-mount; scripts/bench.sh starts a peer)")
		return nil
	}
	mounts := []string{cfg.mount, cfg.peerMount}
	var hostNames [2]string
	for i, m := range mounts {
		name, err := tree.Host(m)
		if err != nil {
			return err
		}
		hostNames[i] = name
	}
	fmt.Printf("\nctrfs-bench: evacuate: running busybox containers, %v at a time, evacuated %s <-> %s, %d round(s) each way\n",
		cfg.evacCounts, hostNames[0], hostNames[1], cfg.runs)

	var names []string
	defer func() { destroyContainers(mounts, names) }()
	at := 0
	var samples []evacSample
	for _, n := range cfg.evacCounts {
		start := time.Now()
		more, err := growContainers(&names, n, cfg.name+"-ev%02d", mounts[at], true)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "ctrfs-bench: evacuate: made and started %d containers in %.1fs\n", len(more), time.Since(start).Seconds())
		for r := 0; r < 2*cfg.runs; r++ {
			from, to := mounts[at], mounts[1-at]
			t0 := time.Now()
			err := tree.Ctl(from, "evacuate")
			took := time.Since(t0)
			if err != nil {
				return fmt.Errorf("evacuate %d containers from %s: %w", n, hostNames[at], err)
			}
			s := evacSample{n: n, from: hostNames[at], to: hostNames[1-at], total: took}
			for _, c := range names {
				dir := containerDir(to, c)
				if st, _ := tree.Status(dir); st != "RUNNING" {
					return fmt.Errorf("after evacuate %s is %q on %s", c, st, s.to)
				}
				if _, err := os.Stat(containerDir(from, c)); err == nil {
					return fmt.Errorf("after evacuate %s is still on %s", c, s.from)
				}
				if d, err := strconv.ParseFloat(tree.Info(dir)["downtime-seconds"], 64); err == nil {
					s.downtimes = append(s.downtimes, d)
				}
			}
			samples = append(samples, s)
			dt := spreadOfFloats(s.downtimes)
			fmt.Fprintf(os.Stderr, "ctrfs-bench: evacuate %d %s -> %s: %.2fs, downtime median %.3fs max %.3fs\n",
				n, s.from, s.to, took.Seconds(), dt.med, dt.max)
			at = 1 - at
		}
	}
	reportEvacuate(cfg, samples)
	return nil
}

func reportEvacuate(cfg *config, samples []evacSample) {
	fmt.Printf("\nEvacuation (running busybox containers; times min / median / max over %d evacuations each way)\n", cfg.runs)
	fmt.Printf("%-11s %-24s %-18s %-22s %-18s\n", "containers", "total s", "per container s", "downtime median s", "downtime max s")
	var first float64
	for _, n := range cfg.evacCounts {
		var totals []time.Duration
		var downs []float64
		for _, s := range samples {
			if s.n == n {
				totals = append(totals, s.total)
				downs = append(downs, s.downtimes...)
			}
		}
		t := spreadOfDurations(totals)
		dt := spreadOfFloats(downs)
		fmt.Printf("%-11d %-24s %-18.2f %-22.3f %-18.3f\n", n, t.secs(), t.med/float64(n), dt.med, dt.max)
		if first == 0 {
			first = t.med / float64(n)
		} else {
			fmt.Printf("%-11s per-container time %.2fx that of %d containers\n", "", t.med/float64(n)/first, cfg.evacCounts[0])
		}
	}
}
