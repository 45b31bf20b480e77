package ops

import (
	"errors"
	"strings"
	"time"

	"ctrfs/images"
)

// A manifest of saved state or of a snapshot that the store finds damaged
// is moved aside (images/damaged.go) and never read as "no saved state":
// start and restore fail with EIO naming it, info shows it, and only
// `stop` (saved state) or rmdir (snapshot) discards it.

// IsDamaged says whether err comes from a damaged manifest. fs/ still
// shows such a snapshot, so that rmdir can discard it.
func IsDamaged(err error) bool { return errors.Is(err, images.ErrDamaged) }

// manifestDamaged reports a manifest the store has just moved aside: a log
// line and an event `CONTAINER damaged-state|damaged-snapshot failed`.
func (m *Manager) manifestDamaged(de *images.DamagedError) {
	name, what := damagedOwner(de.Key)
	m.log.Error("damaged manifest moved aside", "container", name, "manifest", de.From,
		"kept", de.Path, "reason", de.Reason)
	m.events.Publish(Event{Time: time.Now(), Host: m.cfg.Host, Container: name, What: what, Result: "failed"})
}

// damagedOwner names the container and the kind of a store key.
func damagedOwner(key string) (container, what string) {
	if name, ok := strings.CutPrefix(key, "state/"); ok {
		return name, "damaged-state"
	}
	if rest, ok := strings.CutPrefix(key, "snapshots/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name, "damaged-snapshot"
	}
	if name, ok := strings.CutPrefix(key, "moving/"); ok {
		return name, "damaged-manifest"
	}
	return "-", "damaged-manifest"
}

// damagedPaths lists where the damaged manifests of a container are kept.
func (m *Manager) damagedPaths(name string) []string {
	out := m.images.DamagedPaths(stateKey(name))
	keys, _ := m.images.DamagedKeys(snapshotPrefix(name))
	for _, k := range keys {
		out = append(out, m.images.DamagedPaths(k)...)
	}
	return out
}
