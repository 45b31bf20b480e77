package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
	"unicode"
	"unicode/utf8"

	"ctrfs/cluster"
)

// readSecret reads the cluster's shared secret. It is refused if root
// does not own the file, if anyone but its owner may read or write it, or
// if it is too short or too regular to be random (cluster.CheckSecret): a
// weak or exposed secret opens the cluster (see README, Cluster); and
// whoever owns the file may chmod it, read it or replace it at will. A
// secret written as text loses its surrounding white space (the newline
// of `echo secret > FILE`); random bytes are used as they are, so that a
// newline among them is not cut off.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		return nil, fmt.Errorf("--secret-file %s is owned by uid %d, not root: that user may read or replace the cluster's secret; replace it as root (that user may have read it): %s",
			path, uid, cluster.SecretHelp)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("--secret-file %s: group or others may read or write it (mode %04o); a cluster secret must be its owner's alone: chmod 600 %s, or if others may have read it, %s",
			path, perm, path, cluster.SecretHelp)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	secret := b
	if isText(b) {
		secret = bytes.TrimSpace(b)
	}
	if err := cluster.CheckSecret(secret); err != nil {
		return nil, fmt.Errorf("--secret-file %s holds %w", path, err)
	}
	return secret, nil
}

// isText is true of printable UTF-8 (and white space), which random bytes
// practically never are.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
