package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"ctrfs/images/atomicfile"
	"ctrfs/images/trust"
)

// validKey accepts slash-separated components of letters, digits and
// "._-+@", none starting with "." (so no "..", and no clash with temporary
// files) and none ending in ".json" (so key "a" stored as a.json never clashes
// with the directory of key "a.json/b").
func validKey(key string) error {
	if key == "" {
		return errors.New("images: empty key")
	}
	for _, part := range strings.Split(key, "/") {
		ok := part != "" && part[0] != '.' && len(part) <= 200 && !strings.HasSuffix(part, ".json")
		for _, c := range part {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-+@", c)) {
				ok = false
			}
		}
		if !ok {
			return fmt.Errorf("images: invalid key %q", key)
		}
	}
	return nil
}

func (s *Store) manifestRoot() string { return filepath.Join(s.dir, "manifests") }

func (s *Store) manifestPath(key string) string {
	return filepath.Join(s.manifestRoot(), filepath.FromSlash(key)+".json")
}

// Save stores m under key, replacing any manifest already there. It fails,
// wrapping ErrCorrupt, if a chunk of m is missing, so a saved manifest always
// points at chunks that exist. Saving a manifest from ImportDir ends the GC
// protection ImportDir gave its chunks: the saved manifest now holds them.
func (s *Store) Save(key string, m *Manifest) error {
	if err := validKey(key); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	sealed := *m
	sum, err := sealed.Sum()
	if err != nil {
		return err
	}
	sealed.Checksum = sum
	data, err := json.Marshal(&sealed)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.usage.changed() // after the change: a scrape meanwhile counts it stale
	for _, f := range m.Files {
		for _, c := range f.Chunks {
			if _, err := os.Stat(s.chunks.chunkPath(c.Hash)); err != nil {
				return &chunkError{file: f.Name, hash: c.Hash, reason: "missing", err: err}
			}
		}
	}
	path := s.manifestPath(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := trustedBelow(s.manifestRoot(), filepath.Dir(path)); err != nil {
		return err
	}
	if err := atomicfile.Write(path, data); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	s.pins.unpin(m)
	return nil
}

// Load returns the manifest saved under key. If there is none the error
// wraps fs.ErrNotExist. A damaged one is moved aside (see damaged.go) and
// the error is a *DamagedError, as it is for every later Load of key
// until Delete.
func (s *Store) Load(key string) (*Manifest, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	m, err := s.loadPath(s.manifestPath(key), key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if kept := s.keptDamaged(key); kept != nil {
			return nil, kept
		}
	case errors.Is(err, ErrDamaged):
		s.mu.Lock()
		m, de, qerr := s.quarantineLocked(key)
		s.mu.Unlock()
		if de == nil {
			return m, qerr
		}
		s.reportDamaged([]*DamagedError{de})
		return nil, de
	}
	return m, err
}

// loadPath reads the manifest at path; one that another user could have
// planted or changed (images/trust) is damaged.
func (s *Store) loadPath(path, key string) (*Manifest, error) {
	if _, err := os.Lstat(path); err != nil {
		return nil, fmt.Errorf("images: manifest %s: %w", key, err)
	}
	if err := trustedBelow(s.manifestRoot(), filepath.Dir(path)); err != nil {
		return nil, notOurs(key, err)
	}
	return s.manifests.load(path, key)
}

// notOurs is the damage of a manifest that the trust checks refuse.
func notOurs(key string, err error) error {
	if errors.Is(err, trust.ErrUntrusted) {
		return &damage{key, "not ctrfs's own: " + err.Error()}
	}
	return fmt.Errorf("images: manifest %s: %w", key, err)
}

// trustedBelow checks the directories below root (which Open checked)
// down to dir.
func trustedBelow(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." {
		return err
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		root = filepath.Join(root, part)
		if err := trust.TrustedDir(root); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the manifest saved under key, and the damaged ones kept
// aside for it. Its chunks stay until GC. If there is none the error
// wraps fs.ErrNotExist.
func (s *Store) Delete(key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.usage.changed() // after the change: a scrape meanwhile counts it stale
	found := false
	for _, path := range append([]string{s.manifestPath(key)}, s.damaged.paths(key)...) {
		err := os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("images: manifest %s: %w", key, err)
		}
		found = true
		s.manifests.drop(path)
		if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
			return err
		}
		s.pruneLocked(filepath.Dir(path))
	}
	if !found {
		return fmt.Errorf("images: manifest %s: %w", key, fs.ErrNotExist)
	}
	return nil
}

// Rename moves a manifest, and the damaged ones kept aside, to a new key.
// It fails with an error wrapping fs.ErrExist rather than replace a
// manifest already saved (or kept) under newKey.
func (s *Store) Rename(oldKey, newKey string) error {
	if err := validKey(oldKey); err != nil {
		return err
	}
	if err := validKey(newKey); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, path := range append([]string{s.manifestPath(newKey)}, s.damaged.paths(newKey)...) {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("images: manifest %s: %w", newKey, fs.ErrExist)
		}
	}
	moves := [][2]string{
		{s.manifestPath(oldKey), s.manifestPath(newKey)},
		{s.damaged.path(oldKey), s.damaged.path(newKey)},
	}
	// Extra copies keep their numbers.
	oldPrefix := strings.TrimSuffix(s.damaged.path(oldKey), ".json")
	newPrefix := strings.TrimSuffix(s.damaged.path(newKey), ".json")
	for _, p := range s.damaged.copies(oldKey) {
		moves = append(moves, [2]string{p, newPrefix + strings.TrimPrefix(p, oldPrefix)})
	}
	moved := false
	for _, p := range moves {
		err := s.renameLocked(p[0], p[1], oldKey, newKey)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		moved = true
	}
	if !moved {
		return fmt.Errorf("images: manifest %s: %w", oldKey, fs.ErrNotExist)
	}
	return nil
}

// renameLocked moves one manifest file, a saved or a damaged one.
func (s *Store) renameLocked(oldPath, newPath, oldKey, newKey string) error {
	if _, err := os.Stat(oldPath); err != nil {
		return fmt.Errorf("images: manifest %s: %w", oldKey, err)
	}
	if _, err := os.Stat(newPath); err == nil {
		return fmt.Errorf("images: manifest %s: %w", newKey, fs.ErrExist)
	}
	if err := os.MkdirAll(filepath.Dir(newPath), 0o755); err != nil {
		return err
	}
	if err := trustedBelow(s.dir, filepath.Dir(newPath)); err != nil {
		return err
	}
	if err := os.Rename(oldPath, newPath); err != nil {
		return err
	}
	s.manifests.drop(oldPath)
	if err := atomicfile.SyncDir(filepath.Dir(newPath)); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Dir(oldPath)); err != nil {
		return err
	}
	s.pruneLocked(filepath.Dir(oldPath))
	return nil
}

// pruneLocked removes directories left empty by Delete or Rename so Keys
// does not walk an ever-growing tree. It runs under s.mu so it cannot race
// Save creating a directory.
func (s *Store) pruneLocked(dir string) {
	root := s.manifestRoot()
	if strings.HasPrefix(dir, s.damaged.root()+string(filepath.Separator)) {
		root = s.damaged.root()
	}
	for dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)) {
		if os.Remove(dir) != nil { // not empty
			return
		}
		dir = filepath.Dir(dir)
	}
}

// Keys returns the sorted keys that start with prefix, e.g. "snapshots/c1/".
func (s *Store) Keys(prefix string) ([]string, error) {
	return keysUnder(s.manifestRoot(), prefix)
}

// keysUnder lists the keys of root that begin with prefix, walking only
// the directory that holds them: a container's snapshots are listed from
// its own directory, not by walking every manifest of the store.
func keysUnder(root, prefix string) ([]string, error) {
	dir := path.Dir(prefix + "x") // "snapshots/c1/" -> "snapshots/c1"; "state/c" -> "state"
	var keys []string
	err := walkJSON(filepath.Join(root, filepath.FromSlash(dir)), func(key, _ string) error {
		if dir != "." {
			key = dir + "/" + key
		}
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	sort.Strings(keys)
	return keys, err
}

// walkManifests calls fn for every saved manifest.
func (s *Store) walkManifests(fn func(key, path string) error) error {
	return walkJSON(s.manifestRoot(), fn)
}

// walkJSON calls fn for every KEY.json under root.
func walkJSON(root string, fn func(key, path string) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != root {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(path, ".json") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(strings.TrimSuffix(rel, ".json")), path)
	})
}
