package savedstate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"ctrfs/images"
)

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
