package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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

// maxChain bounds the parents followed from a dump left in staging: more
// than a move makes (cluster's maxPreDumpRounds), and a loop of links
// ends.
const maxChain = 16

// importDumpChain imports the dump in dir and, if CRIU linked it to
// parent images (a move's final dump over its pre-dumps, left by a daemon
// that died), its parents as images.Chain holds them: without them the
// dump does not restore. Parents are followed only into directories
// trusted says are this daemon's staging. The manifests the store holds
// for the imports are returned to be released once the chain is saved.
func importDumpChain(ctx context.Context, store *images.Store, trusted func(string) bool, dir string) (*images.Manifest, []*images.Manifest, error) {
	var held []*images.Manifest
	var dirs []string
	for d := dir; ; {
		dirs = append(dirs, d)
		target, err := os.Readlink(filepath.Join(d, images.ParentDir))
		if os.IsNotExist(err) {
			break
		}
		if err == nil && !filepath.IsAbs(target) {
			target = filepath.Join(d, target)
		}
		if err != nil || len(dirs) > maxChain || !trusted(target) {
			return nil, nil, fmt.Errorf("the parent images of %s are not there (%v)", d, err)
		}
		d = target
	}
	var chain *images.Manifest
	for i := len(dirs) - 1; i >= 0; i-- {
		mf, _, err := store.ImportDir(ctx, dirs[i])
		if err != nil {
			for _, h := range held {
				store.Release(h)
			}
			return nil, nil, err
		}
		held = append(held, mf)
		chain = images.Chain(mf, chain)
	}
	return chain, held, nil
}
