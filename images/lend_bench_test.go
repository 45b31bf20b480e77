package images

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// The two benchmarks below measure what lend.go is about: CRIU reading a
// 256 MiB memory image, shaped like the bench workload's (half random,
// half text), into fresh memory, 4 MiB a read, from the image server's
// pipe (BenchmarkServeMemoryImage) and from a plain file in the page
// cache, as a raw restore does (BenchmarkReadMemoryImageFile). On the
// project's 2-core VM: 0.29 s by write() before lend.go, 0.16-0.21 s
// lent, 0.13-0.18 s from the file.

func memoryImage(b *testing.B) (*Store, File, string) {
	b.Helper()
	src := b.TempDir()
	path := filepath.Join(src, "pages-1.img")
	if err := os.WriteFile(path, benchPages(256<<20), 0o600); err != nil {
		b.Fatal(err)
	}
	s, err := Open(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	m, _, err := s.ImportDir(context.Background(), src)
	if err != nil {
		b.Fatal(err)
	}
	f, _ := m.File("pages-1.img")
	return s, f, path
}

// benchPages is size bytes shaped like the bench workload's memory: half
// random, half repetitive text.
func benchPages(size int) []byte {
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data[:size/2])
	text := []byte("the quick brown fox jumps over the lazy dog, again and again. ")
	copy(data[size/2:], bytes.Repeat(text, size/2/len(text)+1))
	return data
}

// readIntoFreshMemory reads fd to its end into new anonymous memory, as
// CRIU restores pages.
func readIntoFreshMemory(b *testing.B, fd, size int) {
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		b.Error(err)
		return
	}
	defer unix.Munmap(mem)
	for off := 0; off < size; {
		n, err := unix.Read(fd, mem[off:min(off+4<<20, size)])
		if err != nil || n == 0 {
			b.Errorf("read at %d of %d: %v", off, size, err)
			return
		}
		off += n
	}
}

func BenchmarkServeMemoryImage(b *testing.B) {
	s, f, _ := memoryImage(b)
	b.SetBytes(f.Size)
	for b.Loop() {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			b.Fatal(err)
		}
		unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 1<<20)
		unix.SetNonblock(p[1], true)
		done := make(chan struct{})
		go func() { readIntoFreshMemory(b, p[0], int(f.Size)); close(done) }()
		w := os.NewFile(uintptr(p[1]), "pages-1.img")
		var served, lent atomic.Int64
		if err := s.chunks.writeInOrder(newImagePipe(w, f.Name, &served, &lent), f); err != nil {
			b.Fatal(err)
		}
		w.Close()
		<-done
		unix.Close(p[0])
	}
}

func BenchmarkReadMemoryImageFile(b *testing.B) {
	_, f, path := memoryImage(b)
	b.SetBytes(f.Size)
	for b.Loop() {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		readIntoFreshMemory(b, fd, int(f.Size))
		unix.Close(fd)
	}
}
