// Package statefiles reads and writes the cluster's state files under
// STORE/cluster/ (migration journals, incoming markers, the peers to
// rejoin, the peers' addresses), which tell a starting daemon which
// containers to restore, remove or hand over, and where to connect: small
// files replaced by a rename, and read only if ctrfs wrote them, in
// directories of its own (trust.TrustedDir, TrustedFile); the caller
// logs the others and leaves them alone. It holds no state and knows
// nothing of what the files say.
package statefiles

import (
	"os"
	"path/filepath"

	"ctrfs/images/trust"
)

// TrustedDir checks cluster/ and the directory of one kind in it.
func TrustedDir(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := trust.TrustedDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Read reads a state file that ctrfs wrote.
func Read(path string) ([]byte, error) {
	if err := TrustedDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return trust.ReadTrusted(path)
}

// Write replaces a small state file by a rename.
func Write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := TrustedDir(filepath.Dir(path)); err != nil {
		return err
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
