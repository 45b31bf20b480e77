package cluster

import (
	"context"
	"errors"

	"ctrfs/images"
	"ctrfs/ops"
)

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

// precopyMemory sends the memory ahead in rounds of dumps that leave the
// container running, each sending the chunks the target lacks, for as long
// as nextPrecopyRound says; then the final dump sends little.
func (mg *migration) precopyMemory(ctx context.Context) error {
	var sent []int64
	var last *images.Manifest
	for {
		kind, more := nextPrecopyRound(false, sent)
		if !more {
			return mg.prepareState(last)
		}
		mf, err := mg.o.PrecopyMemory(ctx)
		if err != nil {
			return err
		}
		before := mg.sent
		last = mf
		mg.rounds++
		if err := mg.sendChunks(mf.Hashes()); err != nil {
			return err
		}
		sent = append(sent, mg.sent-before)
		mg.c.cfg.Log.Debug("cluster: memory precopy", "container", mg.o.Name(), "round", mg.rounds, "kind", kind, "sent", sent[len(sent)-1])
	}
}

// prepareState has the target unpack the last precopy dump, so that at
// the handover it writes only what the final dump changed and restores
// from there. A target that cannot (or does not know how) restores from
// its store instead: only a broken connection fails the move.
func (mg *migration) prepareState(state *images.Manifest) error {
	if state == nil {
		return nil
	}
	err := mg.call("Host.PrepareState", PrepareStateArgs{Token: mg.token, State: state}, new(bool))
	if err != nil && !errors.Is(err, ops.ErrUnreachable) {
		mg.c.cfg.Log.Warn("cluster: the target did not unpack the state ahead; it restores from its store", "container", mg.o.Name(), "err", err)
		return nil
	}
	return err
}
