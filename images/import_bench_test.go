package images

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkImportCheckpoint imports a 256 MiB image shaped like the bench
// workload's pages (half random, half repetitive text) into a fresh store,
// and exports it back, the two steps ctrfs adds to a raw checkpoint.
func BenchmarkImportCheckpoint(b *testing.B) {
	const size = 256 << 20
	src := b.TempDir()
	if err := os.WriteFile(filepath.Join(src, "pages-1.img"), benchPages(size), 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(filepath.Join(b.TempDir(), "store"))
		if err != nil {
			b.Fatal(err)
		}
		m, _, err := s.ImportDir(context.Background(), src)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Export(context.Background(), m, filepath.Join(b.TempDir(), "out")); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
