package images

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// A cancelled context stops the long operations of the store with its
// error and loses nothing: GC sweeps nothing, an import or export writes
// nothing it was not asked for.
func TestCancelledContext(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.img"), randBytes(50, 300<<10), 0o644)
	s := newStore(t)
	kept, _ := importSave(t, s, dir, "snapshots/c1/a")
	if err := s.Delete("snapshots/c1/a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if _, err := s.GC(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("GC with a cancelled context: %v, want context.Canceled", err)
	}
	for _, f := range kept.Files {
		for _, c := range f.Chunks {
			if !s.Has(c.Hash) {
				t.Fatal("a cancelled GC deleted a chunk")
			}
		}
	}
	if _, _, err := s.ImportDir(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("ImportDir with a cancelled context: %v, want context.Canceled", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s.Export(ctx, kept, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("Export with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.Update(ctx, out, nil, kept); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a cancelled context: %v, want context.Canceled", err)
	}
	if freed, err := s.GC(context.Background()); err != nil || freed == 0 {
		t.Fatalf("GC afterwards freed %d, %v; want the deleted manifest's chunks", freed, err)
	}
}
