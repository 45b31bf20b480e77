package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"unicode"
	"unicode/utf8"

	"ctrfs/cluster"
)

// readSecret reads the cluster's shared secret. It is refused if anyone
// but its owner may read or write the file, or if it is shorter than
// cluster.MinSecretLen: a weak or exposed secret opens the cluster (see
// README, Cluster). A secret written as text loses its surrounding white
// space (the newline of `echo secret > FILE`); random bytes are used as
// they are, so that a newline among them is not cut off.
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
	if len(secret) < cluster.MinSecretLen {
		return nil, fmt.Errorf("--secret-file %s holds a secret of %d bytes; it needs at least %d random bytes: %s",
			path, len(secret), cluster.MinSecretLen, cluster.SecretHelp)
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
