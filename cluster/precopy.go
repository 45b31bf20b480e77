package cluster

// How a live move sends memory ahead while the container runs.
//
// With the kernel's soft-dirty tracking (`criu check --feature
// mem_dirty_track`), CRIU's pre-dump writes the pages and then only the
// pages dirtied since the last round: each round is smaller, as long as
// the container dirties memory more slowly than the rounds go, and the
// rounds stop when one no longer shrinks the dirty set. Without it, every
// round is a whole dump that leaves the container running, and content
// addressing finds what changed: a round costs a whole dump's freeze, so
// there are at most two.

type precopyKind int

const (
	fullDumpRound precopyKind = iota // checkpoint-running, whole memory
	preDumpRound                     // CRIU pre-dump, dirty pages only
)

func (k precopyKind) String() string {
	if k == preDumpRound {
		return "pre-dump"
	}
	return "dump"
}

const (
	maxFullDumpRounds = 2
	maxPreDumpRounds  = 8
	// Compressed bytes a round may add and still be the last: the final
	// dump then sends about as little while the container is down.
	precopyEnough = 8 << 20
)

// nextPrecopyRound decides the memory precopy round by round: given whether
// this host tracks dirty memory and the bytes each round so far sent, it
// says what the next round is, or that there is none (the final dump
// follows). A round ends the precopy when it was small, when it did not
// shrink by a tenth on the one before (the container dirties as fast as
// the rounds go: more rounds would not make the final dump smaller), or at
// the most rounds of its kind.
func nextPrecopyRound(dirtyTracking bool, sent []int64) (kind precopyKind, more bool) {
	kind, max := fullDumpRound, maxFullDumpRounds
	if dirtyTracking {
		kind, max = preDumpRound, maxPreDumpRounds
	}
	n := len(sent)
	switch {
	case n == 0:
		return kind, true
	case n >= max, sent[n-1] <= precopyEnough:
		return kind, false
	case n >= 2 && sent[n-1]*10 > sent[n-2]*9:
		return kind, false
	}
	return kind, true
}
