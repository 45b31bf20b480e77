package main

// The scale benchmark (issue 14, item 7), on the bench's host: for N in
// --scale-counts (growing), N busybox containers (--scale-running of them
// running, the rest stopped) with --scale-snapshots stateless snapshots
// each, made through the mount several at a time. For each N it times,
// --runs times at least 5, what an operator lists (`ls -l containers/`,
// `cat containers/*/status`, `ls -R containers/*/snapshots`) against the
// 100 ms target, and reads from the daemon's metrics (--metrics-url) its
// resident memory and the time of a garbage collection pass, set off by
// deleting (and taking again) a snapshot.

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ctrfs/internal/tree"
)

const targetListing = 100 * time.Millisecond

var listings = []string{"ls -l containers/", "cat containers/*/status", "ls -R containers/*/snapshots"}

type scaleStage struct {
	n, snaps int
	listing  map[string]spreadOf
	rss      float64 // bytes; -1 unknown
	gc       spreadOf
	gcKnown  bool
}

func runScale(cfg *config) error {
	fmt.Printf("\nctrfs-bench: scale: busybox containers (%d running), %d stateless snapshots each, stages %v\n",
		cfg.scaleRunning, cfg.scaleSnaps, cfg.scaleCounts)
	var names []string
	defer func() { destroyContainers([]string{cfg.mount}, names) }()
	var stages []scaleStage
	for _, n := range cfg.scaleCounts {
		start := time.Now()
		more, err := growContainers(&names, n, cfg.name+"-sc%03d", cfg.mount, false)
		if err != nil {
			return err
		}
		made := time.Since(start)
		start = time.Now()
		var snapDirs []string
		for _, c := range more {
			for k := 0; k < cfg.scaleSnaps; k++ {
				snapDirs = append(snapDirs, filepath.Join(cfg.mount, "containers", c, "snapshots", fmt.Sprintf("s%02d", k)))
			}
		}
		if err := parallel(snapDirs, 4, func(d string) error { return os.Mkdir(d, 0o755) }); err != nil {
			return err
		}
		snapped := time.Since(start)
		for i := 0; i < cfg.scaleRunning && i < len(names); i++ {
			if st, _ := tree.Status(containerDir(cfg.mount, names[i])); st != "RUNNING" {
				if err := tree.Ctl(containerDir(cfg.mount, names[i]), "start"); err != nil {
					return err
				}
			}
		}
		fmt.Fprintf(os.Stderr, "ctrfs-bench: scale: made %d containers in %.1fs and %d snapshots in %.1fs\n",
			len(more), made.Seconds(), len(snapDirs), snapped.Seconds())
		st, err := measureScale(cfg, names)
		if err != nil {
			return err
		}
		stages = append(stages, st)
	}
	reportScale(cfg, stages)
	return nil
}

func measureScale(cfg *config, names []string) (scaleStage, error) {
	st := scaleStage{n: len(names), snaps: len(names) * cfg.scaleSnaps, listing: map[string]spreadOf{}, rss: -1}
	rounds := max(cfg.runs, 5)
	for _, l := range listings {
		var ds []time.Duration
		for r := 0; r < rounds; r++ {
			cmd := exec.Command("sh", "-c", l+" >/dev/null")
			cmd.Dir = cfg.mount
			t0 := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				return st, fmt.Errorf("%s: %v: %s", l, err, out)
			}
			ds = append(ds, time.Since(t0))
		}
		st.listing[l] = spreadOfDurations(ds)
	}
	if cfg.metricsURL == "" {
		return st, nil
	}
	if m, err := scrape(cfg.metricsURL); err == nil {
		st.rss = m["process_resident_memory_bytes"]
	}
	var gcs []float64
	snap := filepath.Join(cfg.mount, "containers", names[len(names)-1], "snapshots", "s00")
	for r := 0; r < rounds; r++ {
		before, err := scrape(cfg.metricsURL)
		if err != nil {
			return st, err
		}
		if err := os.Remove(snap); err != nil {
			return st, fmt.Errorf("rmdir %s: %w", snap, err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			m, err := scrape(cfg.metricsURL)
			if err == nil && m["ctrfs_store_gc_runs_total"] > before["ctrfs_store_gc_runs_total"] {
				gcs = append(gcs, m["ctrfs_store_gc_last_seconds"])
				break
			}
			if time.Now().After(deadline) {
				return st, fmt.Errorf("no garbage collection pass within 60s of deleting a snapshot")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := os.Mkdir(snap, 0o755); err != nil {
			return st, err
		}
	}
	st.gc, st.gcKnown = spreadOfFloats(gcs), true
	return st, nil
}

// scrape reads the unlabelled samples of a Prometheus text exposition.
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out, sc.Err()
}

func reportScale(cfg *config, stages []scaleStage) {
	fmt.Printf("\nScale of the tree (ms, min / median / max over %d rounds; target: median under %d ms)\n", max(cfg.runs, 5), targetListing.Milliseconds())
	fmt.Printf("%-11s %-10s %-30s %-24s %s\n", "containers", "snapshots", "listing", "ms", "target")
	for _, s := range stages {
		for _, l := range listings {
			sp := s.listing[l]
			fmt.Printf("%-11d %-10d %-30s %-24s %s\n", s.n, s.snaps, l, sp.ms(), met(sp.med < targetListing.Seconds()))
		}
	}
	fmt.Printf("\n%-11s %-10s %-20s %s\n", "containers", "snapshots", "daemon RSS MiB", "GC pass ms (min / median / max)")
	for _, s := range stages {
		rss, gc := "n/a", "n/a (no --metrics-url)"
		if s.rss >= 0 {
			rss = fmt.Sprintf("%.1f", s.rss/(1<<20))
		}
		if s.gcKnown {
			gc = s.gc.ms()
		}
		fmt.Printf("%-11d %-10d %-20s %s\n", s.n, s.snaps, rss, gc)
	}
	if len(stages) > 1 {
		a, b := stages[0], stages[len(stages)-1]
		fmt.Printf("\nfrom %d to %d containers (x%.0f):", a.n, b.n, float64(b.n)/float64(a.n))
		for _, l := range listings {
			fmt.Printf(" %s x%.1f;", l, b.listing[l].med/a.listing[l].med)
		}
		if a.rss > 0 && b.rss > 0 {
			fmt.Printf(" RSS x%.2f;", b.rss/a.rss)
		}
		if a.gcKnown && b.gcKnown && a.gc.med > 0 {
			fmt.Printf(" GC x%.1f", b.gc.med/a.gc.med)
		}
		fmt.Println()
	}
}
