package moves

import (
	"context"
	"os"

	"ctrfs/images"
	"ctrfs/ops/lxchelper"
)

// Pre-dump precopy rounds, where the kernel tracks dirty memory
// (DirtyTracking). CRIU's pre-dump writes the memory and has the kernel
// track what the tasks dirty from then on; each later round, given the
// one before as its parent (--prev-images-dir), writes only the pages
// dirtied since and marks the rest as in the parent; the final dump
// (Checkpoint) does the same over the last round. Each round's directory
// gets a `parent` symlink to the one before, and CRIU reads the whole
// chain at every later dump and at the restore, so the rounds stay on
// disk until Forget. The symlinks are absolute (the rounds may be in
// different staging roots): CRIU warns that such links may not work on
// restore, but no restore reads them on this host. What leaves this host is the chain
// in the store: each round's own files, and its parents' under parent/
// (images.Chain), which the target unpacks into real directories.

// preDumpRound is one pre-dump: its directory, and the chain of
// manifests that ends with it (its own files, the rounds before under
// parent/). own is held until Forget.
type preDumpRound struct {
	dir   string
	own   *images.Manifest
	chain *images.Manifest
}

// PreDumpMemory is a precopy round of CRIU's pre-dump over the round
// before, if any: the container runs on, and the round's images go into
// the store. It returns the round's own files (what the target lacks), and
// RoundPages says how many pages it wrote. A failed round leaves the
// rounds before as they were.
func (o *Outgoing) PreDumpMemory(ctx context.Context) (*images.Manifest, error) {
	var args []string
	var parent *images.Manifest
	if p := o.lastPreDump(); p != nil {
		args, parent = []string{p.dir}, p.chain
	}
	dir, mf, err := o.precopyDump(ctx, "predump", lxchelper.PreDump, nil, args...)
	if err != nil {
		return nil, err
	}
	o.preDumps = append(o.preDumps, preDumpRound{dir: dir, own: mf, chain: images.Chain(mf, parent)})
	return mf, nil
}

// PreDumpState is what the target unpacks ahead of a final dump over the
// last pre-dump: the chain of rounds as that dump's parents (see
// images.AsParent). nil without pre-dump rounds.
func (o *Outgoing) PreDumpState() *images.Manifest {
	if p := o.lastPreDump(); p != nil {
		return images.AsParent(p.chain)
	}
	return nil
}

func (o *Outgoing) lastPreDump() *preDumpRound {
	if len(o.preDumps) == 0 {
		return nil
	}
	return &o.preDumps[len(o.preDumps)-1]
}

// DropPreDumps forgets the pre-dump rounds: the next precopy round or
// final dump is a whole one.
func (o *Outgoing) DropPreDumps() {
	for _, p := range o.preDumps {
		o.m.images.Release(p.own)
		os.RemoveAll(p.dir)
	}
	o.preDumps = nil
}
