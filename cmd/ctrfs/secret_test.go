package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
// space at an end; text loses its newline; a short secret and a file
// others may read are refused with how to make one.
func TestReadSecret(t *testing.T) {
	random := append(bytes.Repeat([]byte{0xfe, 0x01}, 16), '\n') // binary, ends in a newline
	if got, err := readSecret(writeSecret(t, random, 0o600)); err != nil || !bytes.Equal(got, random) {
		t.Errorf("random bytes ending in a newline: %q %v", got, err)
	}
	text := strings.Repeat("k", 40)
	if got, err := readSecret(writeSecret(t, []byte(text+"\n"), 0o400)); err != nil || string(got) != text {
		t.Errorf("a line of text: %q %v", got, err)
	}
	for what, file := range map[string]string{
		"short":          writeSecret(t, []byte("s3cret\n"), 0o600),
		"31 bytes":       writeSecret(t, random[:31], 0o600),
		"group-readable": writeSecret(t, random, 0o640),
		"world-readable": writeSecret(t, random, 0o604),
		"group-writable": writeSecret(t, random, 0o620),
	} {
		if _, err := readSecret(file); err == nil || !strings.Contains(err.Error(), "head -c 32 /dev/urandom > FILE; chmod 600 FILE") {
			t.Errorf("%s: %v", what, err)
		}
	}
}
