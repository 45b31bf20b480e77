package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ctrfs/images"
	"ctrfs/images/trust"
	"ctrfs/ops/configfile"
	"ctrfs/ops/moves"
	"ctrfs/ops/stored"
	"ctrfs/ops/testhooks"
)

// A rename must survive a crash at any point. LXC's own rename clones the
// container (a copy of its rootfs) and then destroys the original, and a
// crash in between leaves two containers with one address, or one with no
// rootfs. ctrfs renames the container's directory instead (one rename(2)),
// then points its config at the new path and moves its saved state and
// snapshots. A journal written first names both names, and a daemon killed
// at any step finishes the rename when it starts again: every step may run
// twice.

// renameJournal is a rename under way; Undo says it is being undone (it
// failed, without a crash, after its first step).
type renameJournal struct {
	Old  string `json:"old"`
	New  string `json:"new"`
	Undo bool   `json:"undo,omitempty"`
}

// renames moves everything of a container from one name to another in
// the LXC path and the store, under a journal in STORE/renames that lets
// a daemon killed midway finish it when it starts again, and sets aside
// what the store keeps under a name that has no container. Its callers
// hold the names' locks; it knows nothing of locks, records or LXC's
// handles, only the container's directory and config.
type renames struct {
	lxcPath    string
	journalDir string
	images     *images.Store
	stored     *stored.Store
	ledger     *ledger // for the event of a rename finished at start
	log        *slog.Logger
}

func (r *renames) journalPath(j renameJournal) string {
	return filepath.Join(r.journalDir, j.Old+".json")
}

func (r *renames) writeJournal(j renameJournal) error {
	if err := os.MkdirAll(r.journalDir, 0o700); err != nil {
		return err
	}
	if err := trust.TrustedDir(r.journalDir); err != nil {
		return notOursFix(err)
	}
	data, _ := json.Marshal(j)
	return configfile.WriteAtomic(r.journalPath(j), data)
}

// Rename renames a stopped container, with what ctrfs keeps of it. Every
// refusal is the container's operation, so that `error` says why.
func (m *Manager) Rename(oldName, newName string) error {
	if !m.Exists(oldName) {
		return newError(ErrNotFound, fmt.Sprintf("no container %q", oldName), nil)
	}
	err := m.ledger.run(m.opCtx(), operation{name: oldName, what: "rename", fn: func(context.Context, *opContext) error {
		if err := m.validateNewName(newName); err != nil {
			return err
		}
		if oldName == newName {
			return newError(ErrInvalid, fmt.Sprintf("%s is already on this host, %s: moving it into hosts/%s/ does nothing",
				oldName, m.cfg.Host, m.cfg.Host), nil)
		}
		// The new name is locked too, so that a create cannot race the rename.
		releaseNew, err := m.ledger.acquire(newName, "rename")
		if err != nil {
			return err
		}
		defer releaseNew()
		if _, err := os.Lstat(filepath.Join(m.cfg.LXCPath, newName)); err == nil {
			return newError(ErrExists, fmt.Sprintf("container %q exists", newName), nil)
		}
		if err := m.containers.RequireStatus(oldName, "rename", "STOPPED"); err != nil {
			return err
		}
		if err := m.renames.setAsideLeftovers(newName); err != nil {
			return err
		}
		return m.renames.journaled(oldName, newName)
	}})
	if err == nil { // what is kept of it goes under its new name
		m.ledger.rename(oldName, newName)
		m.createdTimes.forget(m.containers.ConfigPath(oldName))
		m.containers.Forget(oldName)
	}
	return err
}

// journaled moves the container under the journal's protection. A
// step that fails (without a crash) is undone the same way.
func (r *renames) journaled(oldName, newName string) error {
	j := renameJournal{Old: oldName, New: newName}
	what := fmt.Sprintf("rename %s to %s", oldName, newName)
	if err := r.writeJournal(j); err != nil {
		return newError(ErrFailed, what+": write its journal", err)
	}
	testhooks.CrashPoint("rename-journaled")
	err := r.moveContainer(oldName, newName)
	if err == nil {
		testhooks.CrashPoint("rename-done")
		os.Remove(r.journalPath(j))
		return nil
	}
	j.Undo = true
	uerr := r.writeJournal(j)
	if uerr == nil {
		uerr = r.moveContainer(newName, oldName)
	}
	if uerr != nil {
		return newError(ErrFailed, fmt.Sprintf("%s: %v; undoing it failed too (%v): the daemon finishes undoing it when it starts again", what, err, uerr), nil)
	}
	os.Remove(r.journalPath(j))
	return newError(ErrFailed, what+"; it keeps its name", err)
}

// moveContainer puts everything of container `from` under the name `to`:
// its LXC directory, the paths and hostname in its config, its saved state
// and snapshots. Steps already done are skipped, so that it can finish a
// move that a crash cut short.
func (r *renames) moveContainer(from, to string) error {
	fromDir, toDir := filepath.Join(r.lxcPath, from), filepath.Join(r.lxcPath, to)
	if _, err := os.Lstat(fromDir); err == nil {
		if _, err := os.Lstat(toDir); err == nil {
			return fmt.Errorf("both %s and %s exist", fromDir, toDir)
		}
		if err := os.Rename(fromDir, toDir); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	testhooks.CrashPoint("rename-moved")
	if err := renameInConfig(filepath.Join(toDir, "config"), fromDir, toDir, to); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	testhooks.CrashPoint("rename-config")
	items, err := r.storeItems(from)
	if err != nil {
		return err
	}
	for item, key := range items {
		newKey, _ := moves.ItemKey(to, item)
		if err := r.images.Rename(key, newKey); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("move %s to %s: %w", key, newKey, err)
		}
		testhooks.CrashPoint("rename-store")
	}
	return nil
}

// renameInConfig points a config at the container's new directory and
// hostname. Paths outside the directory (a rootfs elsewhere) stay.
func renameInConfig(path, fromDir, toDir, name string) error {
	config, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(config), "\n")
	for i, line := range lines {
		key := configfile.Key(line)
		if key == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		_, value, _ := strings.Cut(line, "=")
		value = strings.TrimSpace(value)
		switch {
		case key == "lxc.uts.name":
			value = name
		case strings.Contains(value, fromDir+"/"):
			value = strings.ReplaceAll(value, fromDir+"/", toDir+"/")
		case strings.HasSuffix(value, fromDir):
			value = strings.TrimSuffix(value, fromDir) + toDir
		default:
			continue
		}
		lines[i] = key + " = " + value
	}
	updated := strings.Join(lines, "\n")
	if updated == string(config) {
		return nil
	}
	return configfile.WriteAtomic(path, []byte(updated))
}

// recover finishes the renames (or their undoing) that a killed
// daemon left, before anything else looks at the containers. Only
// journals that ctrfs wrote are followed (trust.ReadTrusted), in a
// directory of its own.
func (r *renames) recover() {
	if trustedStoreDir(r.log, r.journalDir, "rename journals") != nil {
		return
	}
	entries, _ := os.ReadDir(r.journalDir)
	for _, e := range entries {
		path := filepath.Join(r.journalDir, e.Name())
		if !strings.HasSuffix(e.Name(), ".json") {
			os.Remove(path) // a journal that was being written
			continue
		}
		var j renameJournal
		data, err := trust.ReadTrusted(path)
		if err == nil {
			err = json.Unmarshal(data, &j)
		}
		if err == nil && (ValidateName(j.Old) != nil || ValidateName(j.New) != nil) {
			err = fmt.Errorf("names %q and %q", j.Old, j.New)
		}
		if errors.Is(err, trust.ErrUntrusted) {
			r.log.Error("ignoring a rename journal that is not ctrfs's own", "file", path, "reason", err)
			continue
		}
		if err != nil {
			r.log.Error("unreadable rename journal", "file", path, "err", err)
			continue
		}
		from, to := j.Old, j.New
		if j.Undo {
			from, to = to, from
		}
		if err := r.moveContainer(from, to); err != nil {
			r.log.Error("cannot finish a rename that the daemon was killed in; its journal is kept", "from", from, "to", to, "err", err)
			continue
		}
		os.Remove(path)
		r.log.Warn("finished a rename that the daemon was killed in", "from", from, "to", to)
		r.ledger.publish(to, "rename-recovered", "ok", 0)
	}
}

// storeItems are the keys of what the store keeps of a container, by item
// (see moves.ItemKey): its saved state and snapshots.
func (r *renames) storeItems(name string) (map[string]string, error) {
	// Damaged manifests count: they travel with their container and are
	// set aside with a name's leftovers like any other.
	snaps, err := r.stored.Snapshots(name)
	if err != nil {
		return nil, err
	}
	items := map[string]string{}
	for _, s := range snaps {
		items["snapshots/"+s] = stored.SnapshotKey(name, s)
	}
	if r.stored.HasState(name) { // damaged too
		items["state"] = stored.StateKey(name)
	}
	return items, nil
}

// setAsideLeftovers moves what the store keeps under a name that has no
// container out of the way of the container that takes the name (create,
// rename, an arriving migration; the caller holds the name's lock):
// without a container they can only be leftovers, of a daemon killed while
// destroying one, or of a container destroyed with LXC's own tools. They go
// to orphaned/NAME/TIME/ in the store, kept until deleted by hand.
func (r *renames) setAsideLeftovers(name string) error {
	items, err := r.storeItems(name)
	if err != nil {
		return newError(ErrFailed, "look for leftovers of a container "+name, err)
	}
	r.images.Delete(stored.MovingKey(name)) // the archive of a move out that a crash cut short
	if len(items) == 0 {
		return nil
	}
	aside := "orphaned/" + name + "/" + time.Now().UTC().Format("20060102T150405.000000000Z")
	for item, key := range items {
		if err := r.images.Rename(key, aside+"/"+item); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return newError(ErrFailed, fmt.Sprintf("set aside %s, left by an earlier container %s", key, name), err)
		}
	}
	r.log.Warn("set aside the saved state and snapshots of an earlier container of the same name",
		"container", name, "items", len(items), "key", aside)
	return nil
}
