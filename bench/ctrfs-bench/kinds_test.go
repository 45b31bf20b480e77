package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestParseKinds(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"privileged,unprivileged", []string{"privileged", "unprivileged"}},
		{"unprivileged, privileged", []string{"privileged", "unprivileged"}}, // kindNames' order
		{"unprivileged", []string{"unprivileged"}},
		{" privileged ,", []string{"privileged"}},
	} {
		got, err := parseKinds(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseKinds(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", ",", "root", "privileged,privileged", "unprivileged,rootless"} {
		if got, err := parseKinds(in); err == nil {
			t.Errorf("parseKinds(%q) = %v, want an error", in, got)
		}
	}
}

// TestForKind: each kind's pass has its own container and summary; only
// the privileged one runs the snapshot part, and a kind not chosen runs
// neither stopstart nor migrate.
func TestForKind(t *testing.T) {
	cfg := &config{name: "bench", kinds: []string{kindUnprivileged},
		parts:     map[string]bool{"stopstart": true, "snapshots": true, "migrate": true, "scale": false},
		summaries: map[string]*templateSummary{kindPrivileged: {}, kindUnprivileged: {}}}
	p, u := cfg.forKind(kindPrivileged), cfg.forKind(kindUnprivileged)
	if p.name != "bench" || u.name != "bench-unpriv" {
		t.Errorf("names %q, %q; want bench, bench-unpriv", p.name, u.name)
	}
	if p.summary != cfg.summaries[kindPrivileged] || u.summary != cfg.summaries[kindUnprivileged] {
		t.Error("a kind's pass does not add to its own summary")
	}
	if p.parts["stopstart"] || p.parts["migrate"] || !p.parts["snapshots"] {
		t.Errorf("privileged pass, not chosen: parts %v; want the snapshots only", p.parts)
	}
	if !u.parts["stopstart"] || !u.parts["migrate"] || u.parts["snapshots"] || u.parts["scale"] {
		t.Errorf("unprivileged pass: parts %v; want stopstart and migrate", u.parts)
	}
	if !cfg.parts["stopstart"] || kindOf(cfg) != kindPrivileged || kindOf(u) != kindUnprivileged {
		t.Error("forKind changed the config it was called on, or kindOf is wrong")
	}
}

// TestKindsReport checks the layout of the kinds table: one column per
// kind chosen, in order, where it was measured, and the ratios of the
// medians to raw.
func TestKindsReport(t *testing.T) {
	sums := map[string]*templateSummary{
		kindPrivileged: {stopStart: []float64{1.1, 1.2, 1.5}, rawStopStart: []float64{1.0, 1.0, 1.2},
			live: []float64{2, 3, 4}, rawInPlace: []float64{1, 1.5, 2}},
		kindUnprivileged: {stopStart: []float64{2.2}, rawStopStart: []float64{2.0}},
	}
	var buf bytes.Buffer
	kindsReport(&buf, []string{kindPrivileged, kindUnprivileged}, sums, 3, 256, "busybox", "here (load average 1 2 3)")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := [][]string{
		{"kinds", "busybox", "3", "256"},
		{"measured", "here", "load average 1 2 3"},
		{"seconds, min/median/max", "privileged", "unprivileged"},
		{"stop-stateful + start (ctrfs)", "1.100/1.200/1.500", "2.200/2.200/2.200"},
		{"raw lxc-checkpoint -s + -r", "1.000/1.000/1.200", "2.000/2.000/2.000"},
		{"ctrfs/raw (medians)", "1.20x", "1.10x"},
		{"live move downtime (client)", "2.000/3.000/4.000", "not run"},
		{"raw -s + -r in place (client)", "1.000/1.500/2.000", "not run"},
		{"live/raw in place (medians)", "2.00x", "n/a"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, words := range want {
		for _, w := range words {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i+1, lines[i], w)
			}
		}
	}
	// Columns line up: each kind's figure ends where its heading does.
	head := lines[2]
	for _, l := range lines[3:] {
		if len(l) != len(head) {
			t.Errorf("line %q is %d wide, the heading %d", l, len(l), len(head))
		}
	}

	buf.Reset()
	kindsReport(&buf, []string{kindUnprivileged}, sums, 1, 256, "busybox", "here")
	if out := buf.String(); strings.Contains(out, " privileged") || !strings.Contains(out, "unprivileged") {
		t.Errorf("--kinds unprivileged: the table has other columns:\n%s", out)
	}
	buf.Reset()
	kindsReport(&buf, []string{kindPrivileged}, map[string]*templateSummary{kindPrivileged: {}}, 1, 256, "busybox", "here")
	if buf.Len() != 0 {
		t.Errorf("neither part ran, yet the table is printed:\n%s", buf.String())
	}
}

// TestRawImagesReadable: an unprivileged container's raw dump becomes
// readable by its mapped root group alone; a privileged one's is left as
// it is. Needs root (chown).
func TestRawImagesReadable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	lxc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(lxc, "c"), 0o700); err != nil {
		t.Fatal(err)
	}
	lxcConfig := "lxc.idmap = u 0 1000000 65536\nlxc.idmap = g 0 1000000 65536\n"
	if err := os.WriteFile(filepath.Join(lxc, "c", "config"), []byte(lxcConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(t.TempDir(), "dump")
	if err := os.Mkdir(dump, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"core-1.img", "tmpfs-dev-42.tar.gz.img"} {
		if err := os.WriteFile(filepath.Join(dump, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := &bench{cfg: &config{lxcpath: lxc, name: "c", kind: kindPrivileged}}
	if err := b.rawImagesReadable(dump); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dump); st.Mode().Perm() != 0o700 {
		t.Errorf("privileged: the dump is now %#o", st.Mode().Perm())
	}
	b.cfg.kind = kindUnprivileged
	if err := b.rawImagesReadable(dump); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{dump: 0o710, filepath.Join(dump, "core-1.img"): 0o440, filepath.Join(dump, "tmpfs-dev-42.tar.gz.img"): 0o440} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != mode || sys.Uid != 0 || sys.Gid != 1000000 {
			t.Errorf("%s: %#o %d:%d, want %#o 0:1000000", path, st.Mode().Perm(), sys.Uid, sys.Gid, mode)
		}
	}
}
