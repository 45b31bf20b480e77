package lazypages

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBinaryMention: a binary is read again when it changes, as when
// criu is upgraded under a running daemon, and a missing one has nothing.
func TestBinaryMention(t *testing.T) {
	p := filepath.Join(t.TempDir(), "criu")
	b := &binaryMention{needle: []byte(devUserfaultfd)}
	if b.check(p) {
		t.Error("a missing binary mentions the device")
	}
	if err := os.WriteFile(p, []byte("\x7fELF upstream criu"), 0o755); err != nil {
		t.Fatal(err)
	}
	if b.check(p) {
		t.Error("upstream criu mentions the device")
	}
	if err := os.WriteFile(p, []byte("\x7fELF patched criu\x00/dev/userfaultfd\x00"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !b.check(p) {
		t.Error("patched criu, written over the old one, does not mention the device")
	}
}
