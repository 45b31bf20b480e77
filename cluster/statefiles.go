package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"ctrfs/images"
	"ctrfs/ops"
)

// The cluster's state files under STORE/cluster/ (migration journals,
// incoming markers, the peers to rejoin) tell a starting daemon which
// containers to restore, remove or hand over, and where to connect: only
// files that ctrfs wrote, in directories of its own (images.TrustedDir,
// TrustedFile), are read; others are logged and left alone.

// trustedStateDir checks cluster/ and the directory of one kind in it.
func trustedStateDir(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := images.TrustedDir(d); err != nil {
			return err
		}
	}
	return nil
}

// readStateFile reads a state file that ctrfs wrote.
func readStateFile(path string) ([]byte, error) {
	if err := trustedStateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return images.ReadTrusted(path)
}

// journals are the names of the containers that have a journal of kind
// (cluster/KIND/NAME.json) that ctrfs wrote.
func (c *Cluster) journals(kind string) []string {
	dir := c.stateDir(kind)
	if err := trustedStateDir(dir); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.cfg.Log.Error("cluster: ignoring migration journals in a directory that is not ctrfs's own: none is followed",
				"dir", dir, "reason", err)
		}
		return nil
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || ops.ValidateName(name) != nil {
			continue
		}
		if err := images.TrustedFile(filepath.Join(dir, e.Name())); err != nil {
			c.cfg.Log.Error("cluster: ignoring a migration journal that is not ctrfs's own",
				"file", filepath.Join(dir, e.Name()), "reason", err)
			continue
		}
		names = append(names, name)
	}
	return names
}
