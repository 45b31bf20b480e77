package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestNextPrecopyRound(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name     string
		tracking bool
		sent     []int64
		kind     precopyKind
		more     bool
	}{
		{"first round without tracking is a whole dump", false, nil, fullDumpRound, true},
		{"first round with tracking is a pre-dump", true, nil, preDumpRound, true},
		{"a small round is the last", false, []int64{4 * mib}, fullDumpRound, false},
		{"a small pre-dump is the last", true, []int64{200 * mib, 5 * mib}, preDumpRound, false},
		{"a big first round asks for another", false, []int64{200 * mib}, fullDumpRound, true},
		{"whole dumps stop at two", false, []int64{200 * mib, 100 * mib}, fullDumpRound, false},
		{"pre-dumps go on while they shrink", true, []int64{256 * mib, 128 * mib, 64 * mib}, preDumpRound, true},
		{"a pre-dump that did not shrink by a tenth ends them", true, []int64{256 * mib, 100 * mib, 95 * mib}, preDumpRound, false},
		{"a pre-dump that grew ends them", true, []int64{256 * mib, 100 * mib, 120 * mib}, preDumpRound, false},
		{"pre-dumps stop at their most", true, []int64{512 * mib, 400 * mib, 300 * mib, 200 * mib, 150 * mib, 100 * mib, 70 * mib, 50 * mib}, preDumpRound, false},
		{"seven shrinking pre-dumps ask for an eighth", true, []int64{512 * mib, 400 * mib, 300 * mib, 200 * mib, 150 * mib, 100 * mib, 70 * mib}, preDumpRound, true},
	}
	for _, c := range cases {
		kind, more := nextPrecopyRound(c.tracking, c.sent)
		if kind != c.kind || more != c.more {
			t.Errorf("%s: nextPrecopyRound(%v, %v) = %v, %v; want %v, %v", c.name, c.tracking, c.sent, kind, more, c.kind, c.more)
		}
	}
}

func TestPrecopyMode(t *testing.T) {
	noTracking := errors.New("criu check --feature mem_dirty_track fails: Dirty tracking is OFF")
	for _, c := range []struct {
		name      string
		fullDumps bool
		tracking  error
		preDump   bool
		why       string
	}{
		{"tracking: pre-dumps", false, nil, true, ""},
		{"no tracking: whole dumps, saying why", false, noTracking, false, "this host does not track dirty memory: criu check --feature mem_dirty_track fails: Dirty tracking is OFF"},
		{"--full-dumps where CRIU could pre-dump", true, nil, false, "move --full-dumps"},
		{"--full-dumps without tracking", true, noTracking, false, "move --full-dumps"},
	} {
		preDump, why := precopyMode(c.fullDumps, c.tracking)
		if preDump != c.preDump || why != c.why {
			t.Errorf("%s: precopyMode(%v, %v) = %v, %q; want %v, %q", c.name, c.fullDumps, c.tracking, preDump, why, c.preDump, c.why)
		}
	}
}

// The report shows each round's bytes and pages, the mode and why; a
// move without memory precopy (cold, post-copy) shows none of it.
func TestPrecopyReport(t *testing.T) {
	var none precopyReport
	if kv := none.keyValues(); kv != nil {
		t.Errorf("no precopy: %v", kv)
	}
	r := precopyReport{announced: true, mode: fullDumpRound, why: "move --full-dumps"}
	r.add(200<<20, 65536)
	r.add(30<<20, 65536)
	want := "precopy-mode=dump precopy-mode-why=move --full-dumps precopy-round-bytes=209715200 31457280 precopy-round-pages=65536 65536"
	var got []string
	for _, kv := range r.keyValues() {
		got = append(got, kv.Key+"="+kv.Value)
	}
	if strings.Join(got, " ") != want {
		t.Errorf("report:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}
