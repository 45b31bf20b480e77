package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"ctrfs/images/atomicfile"
	"ctrfs/images/chunking"
	"ctrfs/images/manifest"
)

// ErrDamaged is wrapped by the error of loading a manifest that cannot be
// trusted: it does not parse, does not match its checksum, or describes
// files that cannot be. A manifest that is merely absent is fs.ErrNotExist.
var ErrDamaged = errors.New("damaged manifest")

// A damaged manifest is moved aside, out of manifests/ into damaged/ under
// the same key, so that GC can go on for everything else. It stays there,
// and Load of its key keeps failing with a DamagedError, until Delete
// discards it: saved state that cannot be read is still saved state, and
// only the operator may throw it away. GC keeps every chunk whose name
// appears in it, so that nothing a repair by hand might need is lost.
//
// damagedDir is that damaged/ directory: where the damaged manifests of a
// key are kept. It knows paths only, not what is in them.
type damagedDir string

func (d damagedDir) root() string { return string(d) }

func (d damagedDir) path(key string) string {
	return filepath.Join(d.root(), filepath.FromSlash(key)+".json")
}

// A key damaged again while a damaged manifest of it is kept (saved state
// damaged, kept, then saved or put back by hand and damaged again) keeps
// the next one beside it as KEY~2.json, KEY~3.json, …: '~' is in no key
// (validKey), so that an extra copy never reads as the damaged manifest
// of another key (KEY.2.json was key KEY.2's: a container c1.2 showed c1's
// damaged state, and a delete of snapshot s.2 discarded s's copy).
const damagedCopySep = "~"

func (d damagedDir) copyPath(key string, n int) string {
	return filepath.Join(d.root(), filepath.FromSlash(key)+damagedCopySep+strconv.Itoa(n)+".json")
}

// damagedCopies are the paths of the extra damaged manifests kept for key,
// in the order they were kept.
func (d damagedDir) copies(key string) []string {
	prefix := strings.TrimSuffix(d.path(key), ".json") + damagedCopySep
	matches, _ := filepath.Glob(prefix + "*.json") // keys hold no glob metacharacters
	type copyPath struct {
		n    int
		path string
	}
	var copies []copyPath
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(m, prefix), ".json"))
		if err == nil && n >= 2 {
			copies = append(copies, copyPath{n, m})
		}
	}
	slices.SortFunc(copies, func(a, b copyPath) int { return a.n - b.n })
	out := make([]string, len(copies))
	for i, c := range copies {
		out[i] = c.path
	}
	return out
}

// damagedPaths are the paths of every damaged manifest kept for key:
// the first, then the extra copies.
func (d damagedDir) paths(key string) []string {
	return append([]string{d.path(key)}, d.copies(key)...)
}

// DamagedError reports a damaged manifest and where it is kept.
type DamagedError struct {
	Key    string
	From   string // where it was found
	Path   string // where it is kept now
	Reason string // what is wrong with it; "" if it was moved aside earlier
}

func (e *DamagedError) Error() string {
	msg := "manifest " + e.From + " is damaged"
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg + "; it is kept in " + e.Path
}

func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// damage is loadPath's error for a manifest it cannot trust.
type damage struct{ key, reason string }

func (e *damage) Error() string        { return "images: manifest " + e.key + ": " + e.reason }
func (e *damage) Is(target error) bool { return target == ErrDamaged }

// OnDamaged sets a function called (outside the store's lock) for every
// manifest moved aside, by Load or by GC, so that the owner can report it.
func (s *Store) OnDamaged(fn func(*DamagedError)) {
	s.mu.Lock()
	s.onDamaged = fn
	s.mu.Unlock()
}

func (s *Store) reportDamaged(list []*DamagedError) {
	s.mu.Lock()
	fn := s.onDamaged
	s.mu.Unlock()
	if fn == nil {
		return
	}
	for _, de := range list {
		fn(de)
	}
}

// quarantineLocked moves the manifest under key to damaged/ if it is still
// damaged when read under s.mu (a Save may have replaced it since it was
// read). It returns the manifest if it is sound after all, the
// DamagedError if it was moved, or the error of reading it.
func (s *Store) quarantineLocked(key string) (*Manifest, *DamagedError, error) {
	from := s.manifestPath(key)
	m, err := s.loadPath(from, key)
	var d *damage
	if !errors.As(err, &d) {
		return m, nil, err
	}
	// An earlier damaged manifest of the same key (saved state damaged,
	// kept, then saved and damaged again) stays: only the operator throws
	// a kept one away, so a second one goes beside it.
	to := s.damaged.path(key)
	for n := 2; ; n++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = s.damaged.copyPath(key, n)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return nil, nil, err
	}
	if err := os.Rename(from, to); err != nil {
		return nil, nil, err
	}
	s.usage.changed()
	if err := atomicfile.SyncDir(filepath.Dir(to)); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.SyncDir(filepath.Dir(from)); err != nil {
		return nil, nil, err
	}
	return nil, &DamagedError{Key: key, From: from, Path: to, Reason: d.reason}, nil
}

// keptDamaged is the error for a key whose manifest was moved aside
// earlier, or nil if it has none.
func (s *Store) keptDamaged(key string) error {
	path := s.damaged.path(key)
	if _, err := os.Lstat(path); err != nil {
		return nil
	}
	return &DamagedError{Key: key, From: s.manifestPath(key), Path: path}
}

// DamagedKeys returns the sorted keys, starting with prefix, of the
// damaged manifests kept aside; the extra copies of a key are not keys.
func (s *Store) DamagedKeys(prefix string) ([]string, error) {
	keys, err := keysUnder(s.damaged.root(), prefix)
	return slices.DeleteFunc(keys, func(k string) bool { return validKey(k) != nil }), err
}

// HasDamaged says whether a damaged manifest of key is kept aside: one
// stat, where DamagedKeys lists a directory.
func (s *Store) HasDamaged(key string) bool { return s.keptDamaged(key) != nil }

// DamagedPaths are where the damaged manifests of key are kept, the
// first and its extra copies, if it has any.
func (s *Store) DamagedPaths(key string) []string {
	if !s.HasDamaged(key) {
		return nil
	}
	return s.damaged.paths(key)
}

// hashRun finds what looks like a chunk name, in a manifest that no longer
// parses: the digest, which names a chunk in either form (see chunking/hash.go).
var hashRun = regexp.MustCompile(`[0-9a-f]{64}`)

// markDamagedLocked adds to live every chunk named in a damaged manifest.
func (s *Store) markDamagedLocked(live map[string]bool) error {
	err := walkJSON(s.damaged.root(), func(key, path string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Both forms: a manifest cut just after a digest may have
		// lost the suffix that said which it was.
		for _, h := range hashRun.FindAll(data, -1) {
			live[string(h)] = true
			live[string(h)+chunking.Blake3Suffix] = true
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// parseManifest reads a stored manifest. One of version 1 without a
// checksum may be from a ctrfs before checksums and is accepted if it is
// valid; from version manifest.ChecksummedSince on, one without a checksum is
// damaged. One of a newer version is refused without being called
// damaged, as it may be sound.
func parseManifest(data []byte, key string) (*Manifest, error) {
	m := new(Manifest)
	if err := json.Unmarshal(data, m); err != nil {
		return nil, &damage{key, "does not parse: " + err.Error()}
	}
	if m.Version > manifest.Newest {
		return nil, fmt.Errorf("images: manifest %s: unsupported manifest version %d", key, m.Version)
	}
	if m.Checksum == "" && m.Version >= manifest.ChecksummedSince {
		return nil, &damage{key, "no checksum"}
	}
	if m.Checksum != "" {
		sum, err := m.Sum()
		if err != nil || sum != m.Checksum {
			return nil, &damage{key, "checksum mismatch"}
		}
	}
	if err := m.Validate(); err != nil {
		return nil, &damage{key, strings.TrimPrefix(err.Error(), "images: ")}
	}
	return m, nil
}
