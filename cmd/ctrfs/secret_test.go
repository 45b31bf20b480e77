package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ctrfs/internal/testenv"
)

func writeSecret(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestReadSecret: random bytes are the secret as they are, even with white
// space at an end; text loses its newline; a short secret, one too regular
// to be random, a file others may read and one root does not own are
// refused with how to make one.
func TestReadSecret(t *testing.T) {
	testenv.NeedRoot(t, "only files root owns are taken for a secret")
	random := []byte("\x8a\x13\xf0\x5c\x27\xd9\x61\x04\xbe\x72\x3f\xe5\x90\x1d\xc8\x46" +
		"\x0b\xa7\x59\xee\x32\x8d\x75\xc1\x1a\x64\xfb\x28\x9e\x53\xd0\x0a") // binary, ends in a newline
	if got, err := readSecret(writeSecret(t, random, 0o600)); err != nil || !bytes.Equal(got, random) {
		t.Errorf("random bytes ending in a newline: %q %v", got, err)
	}
	text := "Tr0ub4dor&3-correct-horse-battery-staple"
	if got, err := readSecret(writeSecret(t, []byte(text+"\n"), 0o400)); err != nil || string(got) != text {
		t.Errorf("a line of text: %q %v", got, err)
	}
	for what, file := range map[string]string{
		"short":             writeSecret(t, []byte("s3cret\n"), 0o600),
		"31 bytes":          writeSecret(t, random[:31], 0o600),
		"group-readable":    writeSecret(t, random, 0o640),
		"world-readable":    writeSecret(t, random, 0o604),
		"group-writable":    writeSecret(t, random, 0o620),
		"32 a's":            writeSecret(t, bytes.Repeat([]byte("a"), 32), 0o600),
		"32 NULs":           writeSecret(t, make([]byte, 32), 0o600),
		"15 values":         writeSecret(t, []byte(strings.Repeat("abcdefghijklmno", 3)), 0o600),
		"a quarter and one": writeSecret(t, append(bytes.Repeat([]byte{7}, 9), random[:23]...), 0o600),
		"another user's":    chownSecret(t, writeSecret(t, random, 0o600), 65534),
	} {
		if _, err := readSecret(file); err == nil || !strings.Contains(err.Error(), "head -c 32 /dev/urandom > FILE; chmod 600 FILE") {
			t.Errorf("%s: %v", what, err)
		}
	}
	// A quarter exactly, and 16 values exactly, are random enough.
	if _, err := readSecret(writeSecret(t, append(bytes.Repeat([]byte{7}, 8), random[:24]...), 0o600)); err != nil {
		t.Errorf("a byte a quarter of the secret: %v", err)
	}
	if _, err := readSecret(writeSecret(t, []byte(strings.Repeat("abcdefghijklmnop", 2)), 0o600)); err != nil {
		t.Errorf("16 values twice: %v", err)
	}
}

func chownSecret(t *testing.T, file string, uid int) string {
	t.Helper()
	if err := os.Chown(file, uid, uid); err != nil {
		t.Fatal(err)
	}
	return file
}
