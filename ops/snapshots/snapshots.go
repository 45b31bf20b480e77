// Package snapshots is a container's snapshots as this host takes, lists,
// restores and deletes them: one manifest each in the image store (the
// rootfs as a tar archive, the LXC config, and for a stateful one the
// CRIU images of a dump that leaves the container running), and the
// rollback of a container's rootfs and config to one, with the swap of
// rootfs directories that a daemon killed midway finishes at start
// (rootfs.go). The dumps and restores are savedstate.Keeper's. It knows
// nothing of operations' locks and records (ops runs these under them and
// reports what they fill in their opctx.Op), nor of moves.
package snapshots

import (
	"context"
	"log/slog"

	"ctrfs/images"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/opctx"
	"ctrfs/ops/savedstate"
	"ctrfs/ops/staging"
	"ctrfs/ops/stored"
)

// Snapshots takes and restores the snapshots of the containers of one
// LXC path.
type Snapshots struct {
	containers *lxcpath.Containers
	stored     *stored.Store
	images     *images.Store // stored's
	saved      *savedstate.Keeper
	staging    *staging.Area
	scratchDir string // tar's incremental state of a stateful snapshot
	log        *slog.Logger
	// start starts a stopped container (ops.Manager's start), which a
	// stateless restore does to one that was running.
	start func(ctx context.Context, oc *opctx.Op, name string) error
}

// New is the snapshots of containers, kept in st and dumped and restored
// by saved; start starts a stopped container.
func New(containers *lxcpath.Containers, st *stored.Store, saved *savedstate.Keeper, area *staging.Area, scratchDir string, log *slog.Logger,
	start func(ctx context.Context, oc *opctx.Op, name string) error) *Snapshots {
	return &Snapshots{containers: containers, stored: st, images: st.Images(), saved: saved, staging: area, scratchDir: scratchDir, log: log, start: start}
}
