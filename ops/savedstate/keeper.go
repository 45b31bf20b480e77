// Package savedstate is a container's saved state as this host makes,
// proves and uses it: the CRIU dump of a held container into the image
// store (checkpoint.go), the hold that keeps its processes frozen and off
// the wire until the dump is proven or handed over (hold.go), the restore
// rehearsal that proves it, `check` (check.go, quickcheck.go), the restore
// with either of CRIU's mount engines (restoremode.go) and what a daemon
// killed mid-dump left in staging. It knows nothing of operations' locks
// and records (ops runs these under them and reports what they fill in
// their opctx.Op), of snapshots, or of the other host of a move.
package savedstate

import (
	"log/slog"

	"ctrfs/images"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/staging"
	"ctrfs/ops/stored"
)

// Keeper makes and restores the saved state of the containers of one LXC
// path.
type Keeper struct {
	containers *lxcpath.Containers
	stored     *stored.Store
	images     *images.Store // stored's
	staging    *staging.Area
	log        *slog.Logger
	announce   func(name string) // a released container tells the network where it is
}

// New is the Keeper of containers' saved state in st, dumped through
// area; announce has a running container send a gratuitous ARP.
func New(containers *lxcpath.Containers, st *stored.Store, area *staging.Area, log *slog.Logger, announce func(name string)) *Keeper {
	return &Keeper{containers: containers, stored: st, images: st.Images(), staging: area, log: log, announce: announce}
}

// Parent is a pre-dump that a checkpoint is made over (CRIU's
// --prev-images-dir): its directory, and the chain of manifests that ends
// with it (images.Chain).
type Parent struct {
	Dir   string
	Chain *images.Manifest
}
