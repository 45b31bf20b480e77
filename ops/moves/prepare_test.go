package moves

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"ctrfs/ops/stored"
)

// A rootfs archive that does not unpack fails Prepare, and leaves nothing
// for Install to take as a prepared tree (an error lost here once made a
// move install whatever part of the tree had come out).
func TestPrepareFailsOnABadArchive(t *testing.T) {
	m := testMoves(t)
	st := m.images
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, stored.SnapshotRootfs), []byte("not a tar archive at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	mf, _, err := st.ImportDir(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Release(mf)
	in, err := m.Receive("c1")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := in.Prepare(context.Background(), mf); err == nil {
		t.Fatal("Prepare unpacked a broken archive without an error")
	}
	if in.prepared != nil {
		t.Fatal("a failed Prepare left a prepared tree for Install")
	}
	if _, err := os.Stat(in.creatingDir()); !os.IsNotExist(err) {
		t.Fatalf("a failed Prepare left %s: %v", in.creatingDir(), err)
	}
}
