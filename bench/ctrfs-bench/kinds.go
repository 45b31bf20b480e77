package main

// --kinds (issue 21): the stop/start and migration parts run once per kind
// of container, privileged and unprivileged, each on a container of its
// own made with that kind named explicitly (create NAME --privileged or
// --unprivileged), with its own raw-vs-ctrfs rounds and tables; the kinds
// table at the end sets the kinds side by side. The other parts keep
// their privileged container.
//
// The raw side of an unprivileged container gets what raw LXC needs to
// restore one and nothing of ctrfs's: its restored tasks open most CRIU
// images from inside the container's user namespace (notes of issue 21),
// so after the dump the image directory and files are handed to the
// container's mapped root group, read-only, as an operator would do.

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"ctrfs/internal/tree"
	"ctrfs/ops/idmap"
)

const (
	kindPrivileged   = "privileged"
	kindUnprivileged = "unprivileged"
)

// kindNames are the kinds --kinds takes, in the order they run.
var kindNames = []string{kindPrivileged, kindUnprivileged}

// parseKinds parses --kinds: a comma list of kindNames, each once; the
// result is in kindNames' order.
func parseKinds(s string) ([]string, error) {
	seen := map[string]bool{}
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if k != kindPrivileged && k != kindUnprivileged {
			return nil, fmt.Errorf("unknown kind %q (the kinds: %s)", k, strings.Join(kindNames, ", "))
		}
		if seen[k] {
			return nil, fmt.Errorf("kind %q given twice", k)
		}
		seen[k] = true
	}
	var out []string
	for _, k := range kindNames {
		if seen[k] {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q names no kind (the kinds: %s)", s, strings.Join(kindNames, ", "))
	}
	return out, nil
}

// kindOf is the kind of the containers cfg makes: privileged unless a
// kind's pass chose otherwise (the parts that --kinds leaves alone).
func kindOf(cfg *config) string {
	if cfg.kind == "" {
		return kindPrivileged
	}
	return cfg.kind
}

// forKind is cfg for one kind's pass: its own container name (the
// privileged one keeps --name), its figures in that kind's summary, and
// parts for which only runs the kinds pass it belongs to: stopstart and
// migrate for the kinds chosen, snapshots in the privileged pass only.
func (cfg *config) forKind(kind string) *config {
	k := *cfg
	k.kind = kind
	if kind != kindPrivileged {
		k.name = cfg.name + "-unpriv"
	}
	k.summary = cfg.summaries[kind]
	chosen := false
	for _, c := range cfg.kinds {
		chosen = chosen || c == kind
	}
	k.parts = map[string]bool{}
	for p, on := range cfg.parts {
		k.parts[p] = on
	}
	k.parts["stopstart"] = cfg.parts["stopstart"] && chosen
	k.parts["migrate"] = cfg.parts["migrate"] && chosen
	k.parts["snapshots"] = cfg.parts["snapshots"] && kind == kindPrivileged
	return &k
}

// checkKind fails unless the container (one an earlier bench left with
// --keep) is of the kind this pass measures: its figures would be
// reported under the wrong kind.
func (b *bench) checkKind() error {
	want := map[string]string{kindPrivileged: "yes", kindUnprivileged: "no"}[kindOf(b.cfg)]
	if got := tree.Info(b.ctr)["privileged"]; got != want {
		return fmt.Errorf("%s exists with privileged: %q in its info, and this pass measures %s containers: pick another --name", b.ctr, got, kindOf(b.cfg))
	}
	return nil
}

// rawImagesReadable lets an unprivileged container's mapped root read a
// raw dump's images for lxc-checkpoint -r, as issue 21's raw reproduction
// does: directory root:GID 0710, files root:GID 0440, GID the map's. A
// privileged container's images stay as CRIU wrote them.
func (b *bench) rawImagesReadable(dir string) error {
	if kindOf(b.cfg) != kindUnprivileged {
		return nil
	}
	config, err := os.ReadFile(filepath.Join(b.cfg.lxcpath, b.cfg.name, "config"))
	if err != nil {
		return err
	}
	m, ok, err := idmap.FromConfig(config)
	if err != nil || !ok {
		return fmt.Errorf("%s's LXC config has no usable lxc.idmap (unprivileged?): %v", b.cfg.name, err)
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o440)
		if d.IsDir() {
			mode = 0o710
		} else if !d.Type().IsRegular() {
			return nil
		}
		if err := os.Lchown(path, 0, int(m.GID)); err != nil {
			return err
		}
		return os.Chmod(path, mode)
	})
}

// kindsReport prints the kinds table: for each kind chosen, side by side,
// stop-stateful + start against raw lxc-checkpoint -s + -r, and a live
// move's downtime against raw -s + -r in place (as a client saw it), with
// min/median/max and the ratio of the medians. where says on what it was
// measured. Nothing is printed when neither part ran.
func kindsReport(w io.Writer, kinds []string, sums map[string]*templateSummary, runs, mib int, template, where string) {
	ran := false
	for _, k := range kinds {
		s := sums[k]
		ran = ran || len(s.stopStart)+len(s.live) > 0
	}
	if !ran {
		return
	}
	fmt.Fprintf(w, "\nkinds of container, %s template, %d round(s), %d MiB memhog\nmeasured on %s\n", template, runs, mib, where)
	fmt.Fprintf(w, "%-40s", "seconds, min/median/max")
	for _, k := range kinds {
		fmt.Fprintf(w, " %23s", k)
	}
	fmt.Fprintln(w)
	row := func(label string, of func(*templateSummary) string) {
		fmt.Fprintf(w, "%-40s", label)
		for _, k := range kinds {
			fmt.Fprintf(w, " %23s", of(sums[k]))
		}
		fmt.Fprintln(w)
	}
	ratio := func(ct, raw []float64) string {
		if len(ct) == 0 || len(raw) == 0 || median(raw) <= 0 || spread(ct) == "n/a" || spread(raw) == "n/a" {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", median(ct)/median(raw))
	}
	spreadOrNA := func(v []float64) string {
		if len(v) == 0 {
			return "not run"
		}
		return spread(v)
	}
	row("stop-stateful + start (ctrfs)", func(s *templateSummary) string { return spreadOrNA(s.stopStart) })
	row("  raw lxc-checkpoint -s + -r", func(s *templateSummary) string { return spreadOrNA(s.rawStopStart) })
	row("  ctrfs/raw (medians)", func(s *templateSummary) string { return ratio(s.stopStart, s.rawStopStart) })
	row("live move downtime (client)", func(s *templateSummary) string { return spreadOrNA(s.live) })
	row("  raw -s + -r in place (client)", func(s *templateSummary) string { return spreadOrNA(s.rawInPlace) })
	row("  live/raw in place (medians)", func(s *templateSummary) string { return ratio(s.live, s.rawInPlace) })
}

// measuredOn says where the figures come from: host, kernel, tools, load.
func measuredOn() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	return fmt.Sprintf("%s (kernel %s, criu %s, lxc %s), %s", host, kernel(), toolVersion("criu"), toolVersion("lxc-checkpoint"), loadAverage())
}
