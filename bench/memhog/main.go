// Command memhog is the workload of the stateful stop/start benchmark
// (cmd/ctrfs-bench): a small static program that runs inside a container and
// holds a fixed amount of dirtied anonymous memory, so that a checkpoint of
// the container has that much to save.
//
// It maps --mib MiB of private anonymous memory, fills the first half with
// pseudo-random bytes (incompressible) and the second half with repetitive
// text (very compressible), so every page is dirty, then sleeps forever.
//
// It reports through files in --dir, written atomically (temporary file and
// rename) and never held open, so that nothing it does gets in the way of a
// checkpoint:
//
//	ready  written once the memory is filled: pid, mib, sum (CRC-32C of the
//	       whole region), fill-seconds
//	sum    rewritten every --interval: pid, seq (counts up), sum (computed
//	       afresh from the memory)
//
// A process that survived a checkpoint and restore keeps its pid, its sum
// stays equal to the one in `ready`, and seq keeps counting up.
//
// Build it static: CGO_ENABLED=0 go build -o memhog ./bench/memhog
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

func main() {
	mib := flag.Int("mib", 256, "MiB of anonymous memory to dirty and hold")
	dir := flag.String("dir", "/var/lib/memhog", "directory for the ready and sum files")
	interval := flag.Duration("interval", 5*time.Second, "how often to recompute the checksum and rewrite the sum file (0: never)")
	seed := flag.Uint64("seed", 1, "seed of the random half")
	flag.Parse()

	// One P: the program is a sleeping region of pages, and a quiet
	// process is the simplest thing for CRIU to freeze.
	runtime.GOMAXPROCS(1)

	if *mib <= 0 {
		fail(fmt.Errorf("--mib must be positive"))
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fail(err)
	}
	os.Remove(filepath.Join(*dir, "ready"))
	os.Remove(filepath.Join(*dir, "sum"))

	start := time.Now()
	size := *mib << 20
	// Outside the Go heap: exactly one private anonymous mapping of that size.
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		fail(fmt.Errorf("mmap %d MiB: %w", *mib, err))
	}
	fill(mem, *seed)
	sum := checksum(mem)
	pid := os.Getpid()
	if err := writeFile(*dir, "ready", fmt.Sprintf("pid: %d\nmib: %d\nsum: %08x\nfill-seconds: %.3f\n",
		pid, *mib, sum, time.Since(start).Seconds())); err != nil {
		fail(err)
	}

	for seq := 1; ; seq++ {
		if *interval <= 0 {
			select {}
		}
		time.Sleep(*interval)
		// Reading every page proves the memory is still there and intact.
		if err := writeFile(*dir, "sum", fmt.Sprintf("pid: %d\nseq: %d\nsum: %08x\n", pid, seq, checksum(mem))); err != nil {
			fmt.Fprintln(os.Stderr, "memhog:", err)
		}
		runtime.KeepAlive(mem)
	}
}

// fill writes every byte of mem: random first half, text second half.
func fill(mem []byte, seed uint64) {
	half := len(mem) / 2
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rnd := mem[:half]
	i := 0
	for ; i+8 <= len(rnd); i += 8 {
		binary.LittleEndian.PutUint64(rnd[i:], rng.Uint64())
	}
	for ; i < len(rnd); i++ {
		rnd[i] = byte(rng.Uint32())
	}

	// Repetitive text: one paragraph over and over. Its length is not a
	// divisor of the page size, so pages differ from their neighbours as
	// real text buffers would, yet the whole half compresses to almost
	// nothing.
	txt := mem[half:]
	for off := 0; off < len(txt); {
		off += copy(txt[off:], paragraph)
	}
}

const paragraph = "ctrfs memhog: this half of the region holds repetitive text. " +
	"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt " +
	"ut labore et dolore magna aliqua. The quick brown fox jumps over the lazy dog; " +
	"pack my box with five dozen liquor jugs. GET /api/v1/items?page=1 200 OK 4096 bytes.\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli) // hardware-assisted on amd64 and arm64

func checksum(mem []byte) uint32 { return crc32.Checksum(mem, castagnoli) }

func writeFile(dir, name, content string) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "memhog:", err)
	// Do not spin under init's respawn.
	time.Sleep(10 * time.Second)
	os.Exit(1)
}
