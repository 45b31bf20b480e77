package cluster

import "testing"

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
