package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// The targets of issue 12 (real system containers), read against raw
// lxc-checkpoint of the same container in the same run: the frozen time of
// a stateful snapshot against the raw dump's, and a live move's downtime
// against raw `lxc-checkpoint -s` then `-r` in place.
const (
	targetFrozenRatio   = 1.3
	targetLiveRawRatio  = 1.5
	templateDefaultRuns = 5 // --runs with --template debian, unless given
)

// templateSummary gathers, from the parts as they run, the figures that
// the last table sets side by side: ctrfs against raw, seconds per round.
type templateSummary struct {
	stopStart, rawStopStart []float64 // stop-stateful + start; lxc-checkpoint -s + -r
	frozen, rawFrozen       []float64 // snapshot --stateful; lxc-checkpoint without -s (CRIU's frozen time)
	snapGap, rawSnapGap     []float64 // the same, as the counter's clients saw it
	restore, rawRestore     []float64 // restore NAME; lxc-checkpoint -r from stopped
	restoreGap              []float64 // restore NAME, as the counter's clients saw it
	live, rawInPlace        []float64 // live move; -s + -r in place (client downtime)
}

func (s *templateSummary) addStopStart(samples []sample) {
	for _, x := range samples {
		if x.side == "raw" {
			s.rawStopStart = append(s.rawStopStart, x.total().Seconds())
			s.rawRestore = append(s.rawRestore, x.restore.Seconds())
		} else {
			s.stopStart = append(s.stopStart, x.total().Seconds())
		}
	}
}

func (s *templateSummary) addSnapshots(r *snapResults) {
	for _, t := range r.timing {
		if t.side == "raw" {
			s.rawFrozen = append(s.rawFrozen, t.frozen)
			s.rawSnapGap = append(s.rawSnapGap, t.gap)
		} else {
			s.frozen = append(s.frozen, t.frozen)
			s.snapGap = append(s.snapGap, t.gap)
		}
	}
	for _, x := range r.restores {
		s.restore = append(s.restore, x.took.Seconds())
		s.restoreGap = append(s.restoreGap, x.gap)
	}
}

func (s *templateSummary) addMigration(rounds []migSample) {
	for _, x := range rounds {
		switch x.mode {
		case modeLive:
			s.live = append(s.live, x.gap.Seconds())
		case modeRawInPlace:
			s.rawInPlace = append(s.rawInPlace, x.gap.Seconds())
		}
	}
}

// report prints one row per figure: min/median/max of each side, the
// ratio of the medians and the target where the issue sets one. Rows of
// parts that did not run are left out.
func (s *templateSummary) report(w io.Writer, cfg *config, load string) {
	if len(s.stopStart)+len(s.frozen)+len(s.restore)+len(s.live) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s template against raw lxc-checkpoint of the same container, %d round(s), %d MiB memhog; %s\n",
		cfg.template, cfg.runs, cfg.mib, load)
	fmt.Fprintf(w, "%-44s %23s %23s %8s  %s\n", "seconds, min/median/max", "ctrfs", "raw lxc-checkpoint", "ratio", "target")
	row := func(label string, ct, raw []float64, target float64) {
		if len(ct) == 0 || len(raw) == 0 {
			return
		}
		ratio, verdict := "n/a", ""
		if median(raw) > 0 && spread(ct) != "n/a" && spread(raw) != "n/a" {
			r := median(ct) / median(raw)
			ratio = fmt.Sprintf("%.2fx", r)
			if target > 0 {
				verdict = fmt.Sprintf("<= %.1fx: %s", target, met(r <= target))
			}
		} else if target > 0 {
			verdict = fmt.Sprintf("<= %.1fx: not measured", target)
		}
		fmt.Fprintf(w, "%-44s %23s %23s %8s  %s\n", label, spread(ct), spread(raw), ratio, verdict)
	}
	row("stop-stateful + start (-s + -r)", s.stopStart, s.rawStopStart, 0)
	row("stateful snapshot, frozen (CRIU's figure)", s.frozen, s.rawFrozen, targetFrozenRatio)
	row("stateful snapshot, service stalled (client)", s.snapGap, s.rawSnapGap, 0)
	row("restore NAME (raw: -r from stopped)", s.restore, s.rawRestore, 0)
	row("restore NAME, service down (client)", s.restoreGap, s.rawRestore, 0)
	row("live move downtime (raw: -s + -r in place)", s.live, s.rawInPlace, targetLiveRawRatio)
}

// loadAverage is /proc/loadavg's first three figures, to read the table by.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return "load average " + strings.Join(f[:3], " ")
	}
	return "load average unknown"
}
