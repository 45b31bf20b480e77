package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"ctrfs/images"
	"ctrfs/ops"
	"ctrfs/ops/moves"
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
//
// After pre-dumps, the final dump writes only the pages dirtied since the
// last (--prev-images-dir, --track-mem), and the saved state holds the
// rounds as its parents (images.Chain); the target has unpacked them ahead
// under parent/ (PrepareState), adds the final dump's own files and
// restores through them (ops/moves/predump.go).

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

// precopyMode says whether this move's precopy rounds are pre-dumps and,
// if not, why: tracking is moves.DirtyTracking's answer, fullDumps the
// move's --full-dumps.
func precopyMode(fullDumps bool, tracking error) (preDump bool, why string) {
	switch {
	case fullDumps:
		return false, "move --full-dumps"
	case tracking != nil:
		return false, "this host does not track dirty memory: " + tracking.Error()
	}
	return true, ""
}

// precopyMemory sends the memory ahead in rounds that leave the container
// running, pre-dumps where CRIU can (precopyMode), else whole dumps, each
// sending the chunks the target lacks, for as long as nextPrecopyRound
// says; then the final dump sends little. A pre-dump that fails (CRIU
// refusing what its check promised) does not fail the move: the rounds go
// on as whole dumps, and the log and events say so.
func (mg *migration) precopyMemory(ctx context.Context) error {
	preDump, why := precopyMode(mg.fullDumps, moves.DirtyTracking())
	mg.announcePrecopy(preDump, why)
	var sent []int64
	var last *images.Manifest
	for {
		kind, more := nextPrecopyRound(preDump, sent)
		if !more {
			if preDump {
				return mg.prepareState(mg.o.PreDumpState())
			}
			return mg.prepareState(last)
		}
		t := time.Now()
		var mf *images.Manifest
		var err error
		if preDump {
			mf, err = mg.o.PreDumpMemory(ctx)
			if err != nil && ctx.Err() == nil && mg.stillRunning() {
				mg.o.DropPreDumps()
				preDump, sent = false, nil
				mg.announcePrecopy(false, "a pre-dump failed: "+err.Error())
				continue
			}
		} else {
			mf, err = mg.o.PrecopyMemory(ctx)
		}
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
		mg.memory.add(sent[len(sent)-1], mg.o.RoundPages)
		mg.c.cfg.Log.Info("cluster: memory precopy", "container", mg.o.Name(), "round", mg.rounds, "kind", kind,
			"sent", sent[len(sent)-1], "pages", mg.o.RoundPages, "seconds", time.Since(t).Seconds())
		mg.c.mv.PublishEvent(mg.o.Name(), "move-precopy-round", kind.String(), time.Since(t))
	}
}

// announcePrecopy says once how the memory precopy goes (and again if it
// changes): an `events` line move-precopy-mode pre-dump|dump, and why in
// the daemon's log and the move's report. Not an error: whole dumps work
// everywhere, they only send more while the container is down.
func (mg *migration) announcePrecopy(preDump bool, why string) {
	kind := map[bool]precopyKind{true: preDumpRound, false: fullDumpRound}[preDump]
	mg.memory.announced, mg.memory.mode, mg.memory.why = true, kind, why
	mg.c.mv.PublishEvent(mg.o.Name(), "move-precopy-mode", kind.String(), time.Since(mg.start))
	if why == "" {
		mg.c.cfg.Log.Info("cluster: memory precopy by CRIU pre-dumps", "container", mg.o.Name())
		return
	}
	mg.c.cfg.Log.Info("cluster: memory precopy by whole dumps", "container", mg.o.Name(), "why", why)
}

func (mg *migration) stillRunning() bool {
	st, err := mg.o.Status()
	return err == nil && st == "RUNNING"
}

// checkpointOverPreDumps is the freeze's dump: over the last pre-dump, if
// any, so that it writes only the pages dirtied since. If that fails with
// the container still running, a whole dump follows: the move goes on,
// down for longer.
func (mg *migration) checkpointOverPreDumps(ctx context.Context) error {
	err := mg.o.Checkpoint(ctx)
	if err == nil || mg.o.PreDumpState() == nil || ctx.Err() != nil || !mg.stillRunning() {
		return err
	}
	mg.c.cfg.Log.Warn("cluster: the final dump over the pre-dumps failed; dumping whole", "container", mg.o.Name(), "err", err)
	mg.o.DropPreDumps()
	mg.announcePrecopy(false, "the final dump over the pre-dumps failed: "+err.Error())
	return mg.o.Checkpoint(ctx)
}

// precopyReport is what the memory precopy did, for the move's report
// (`info` on the target): the kind of its rounds and why, and per round
// the compressed bytes sent and the pages CRIU wrote.
type precopyReport struct {
	announced bool // a memory precopy ran (not for a cold or post-copy move)
	mode      precopyKind
	why       string
	bytes     []string
	pages     []string
}

func (r *precopyReport) add(sent, pages int64) {
	r.bytes = append(r.bytes, fmt.Sprint(sent))
	r.pages = append(r.pages, fmt.Sprint(pages))
}

func (r *precopyReport) keyValues() []ops.KeyValue {
	if !r.announced {
		return nil
	}
	kv := []ops.KeyValue{{Key: "precopy-mode", Value: r.mode.String()}}
	if r.why != "" {
		kv = append(kv, ops.KeyValue{Key: "precopy-mode-why", Value: r.why})
	}
	return append(kv, ops.KeyValue{Key: "precopy-round-bytes", Value: strings.Join(r.bytes, " ")},
		ops.KeyValue{Key: "precopy-round-pages", Value: strings.Join(r.pages, " ")})
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
