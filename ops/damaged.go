package ops

import (
	"time"

	"ctrfs/images"
	"ctrfs/ops/stored"
)

// A manifest of saved state or of a snapshot that the store finds damaged
// is moved aside (images/damaged.go) and never read as "no saved state":
// start and restore fail with EIO naming it, info shows it, and only
// `stop` (saved state) or rmdir (snapshot) discards it.

// IsDamaged says whether err comes from a damaged manifest
// (stored.IsDamaged). fs/ still shows such a snapshot, so that rmdir can
// discard it.
func IsDamaged(err error) bool { return stored.IsDamaged(err) }

// manifestDamaged reports a manifest the store has just moved aside: a log
// line and an event `CONTAINER damaged-state|damaged-snapshot failed`.
func (m *Manager) manifestDamaged(de *images.DamagedError) {
	name, what := stored.DamagedOwner(de.Key)
	m.log.Error("damaged manifest moved aside", "container", name, "manifest", de.From,
		"kept", de.Path, "reason", de.Reason)
	m.events.Publish(Event{Time: time.Now(), Host: m.cfg.Host, Container: name, What: what, Result: "failed"})
}
