// Command memhog is the workload of the stateful stop/start benchmark
// (bench/ctrfs-bench): a small static program that runs inside a container and
// holds a fixed amount of dirtied anonymous memory, so that a checkpoint of
// the container has that much to save.
//
// It maps --mib MiB of private anonymous memory, fills the first half with
// pseudo-random bytes (incompressible) and the second half with repetitive
// text (very compressible), so every page is dirty, then sleeps forever
// (or, with --rewrite-rate, keeps rewriting it: below).
//
// It keeps, in its own memory, the CRC-32C of every 64 KiB block of the
// region as it last wrote the block. Checking the memory recomputes every
// block's CRC from the pages, compares each with the recorded one
// (bad-blocks counts the blocks that differ: 0 unless memory was lost or
// corrupted under the process) and derives the region's checksum, `sum`,
// as the CRC-32C of the recomputed block CRCs: any change to any page
// changes it.
//
// It reports through files in --dir, written atomically (temporary file and
// rename) and never held open, so that nothing it does gets in the way of a
// checkpoint:
//
//	ready    written once the memory is filled: pid, mib, sum, fill-seconds,
//	         rewrite-rate
//	sum      rewritten every --interval and after each rewrite: pid, seq
//	         (counts up), gen (SIGUSR1 rewrites so far), rate-gen and
//	         rate-bytes (steady rewrite steps and bytes so far), sum and
//	         bad-blocks (computed afresh from the memory)
//	rewrite  written after each SIGUSR1 rewrite (below): pid, gen, sum (of
//	         the whole region after the rewrite), bytes, pattern
//
// A process that survived a checkpoint and restore keeps its pid, seq keeps
// counting up and bad-blocks stays 0. Without --rewrite-rate its sum stays
// equal to the one in `ready` (or in `rewrite`, after a rewrite).
//
// SIGUSR1 makes it rewrite --rewrite-percent of the region with fresh
// pseudo-random bytes (never seen before, so nothing in a store can share
// them), recompute the checksum, write the sum file and then the rewrite
// file. Which pages, --rewrite-pattern:
//
//	contiguous  one contiguous run at the start of the region, the same run
//	            every time: a hot working set, the realistic case (default)
//	scattered   every Nth page across the whole region: the worst case for a
//	            store that shares chunks larger than a page
//
// --rewrite-rate R (MiB/s, default 0: off) makes it rewrite memory steadily:
// every 100 ms, R/10 MiB of fresh pseudo-random bytes, walking page by page
// through the random half and wrapping around (the text half stays as
// compressible as it was). Each step counts rate-gen up by one and adds to
// rate-bytes, and records the new CRCs of the blocks it touched. The sum then
// changes all the time and no outside value can be compared with it; what
// shows that the memory survived a checkpoint intact is the process itself:
// the same pid, bad-blocks 0 (every block still holds what the process last
// wrote there), and seq and rate-gen continuing from where they were rather
// than starting again from 1 (which is what a respawned memhog would do).
//
// Rewrites and checksums run on one goroutine, so a sum file never mixes
// memory from before and after a rewrite.
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
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

func main() {
	mib := flag.Int("mib", 256, "MiB of anonymous memory to dirty and hold")
	dir := flag.String("dir", "/var/lib/memhog", "directory for the ready, sum and rewrite files")
	interval := flag.Duration("interval", 5*time.Second, "how often to recompute the checksum and rewrite the sum file (0: never)")
	seed := flag.Uint64("seed", 1, "seed of the random half")
	rewritePct := flag.Float64("rewrite-percent", 5, "percent of the region that SIGUSR1 rewrites")
	pattern := flag.String("rewrite-pattern", "contiguous", "which pages SIGUSR1 rewrites: contiguous or scattered")
	rate := flag.Float64("rewrite-rate", 0, "MiB/s to rewrite steadily, walking through the random half (R/10 MiB every 100 ms); 0: off")
	flag.Parse()

	// One P: the program is a sleeping region of pages, and a quiet
	// process is the simplest thing for CRIU to freeze.
	runtime.GOMAXPROCS(1)

	if *mib <= 0 {
		fail(fmt.Errorf("--mib must be positive"))
	}
	if *rewritePct <= 0 || *rewritePct > 100 {
		fail(fmt.Errorf("--rewrite-percent must be in (0, 100]"))
	}
	if *pattern != "contiguous" && *pattern != "scattered" {
		fail(fmt.Errorf("--rewrite-pattern must be contiguous or scattered, not %q", *pattern))
	}
	if *rate < 0 {
		fail(fmt.Errorf("--rewrite-rate must not be negative"))
	}
	// Before anything is written: a SIGUSR1 that arrives while the region
	// is still being filled waits for the loop instead of killing us.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fail(err)
	}
	os.Remove(filepath.Join(*dir, "ready"))
	os.Remove(filepath.Join(*dir, "sum"))
	os.Remove(filepath.Join(*dir, "rewrite"))

	start := time.Now()
	size := *mib << 20
	// Outside the Go heap: exactly one private anonymous mapping of that size.
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		fail(fmt.Errorf("mmap %d MiB: %w", *mib, err))
	}
	fill(mem, *seed)
	r := newRegion(mem)
	sum, _ := r.verify()
	pid := os.Getpid()
	if err := writeFile(*dir, "ready", fmt.Sprintf("pid: %d\nmib: %d\nsum: %08x\nfill-seconds: %.3f\nrewrite-rate: %g\n",
		pid, *mib, sum, time.Since(start).Seconds(), *rate)); err != nil {
		fail(err)
	}

	var tick, step <-chan time.Time
	if *interval > 0 {
		t := time.NewTicker(*interval)
		defer t.Stop()
		tick = t.C
	}
	stepBytes := 0
	if *rate > 0 {
		// Whole pages, at least one.
		stepBytes = max(int(*rate*(1<<20)/10/pageSize+0.5), 1) * pageSize
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		step = t.C
	}
	// The rewrites' bytes come from a generator of their own, seeded apart
	// from the fill's, so no rewrite repeats the fill or an earlier rewrite.
	rw := rand.New(rand.NewPCG(*seed^0x5bd1e995, *seed+0x2545f4914f6cdd1d))
	seq, gen := 0, 0
	rateGen, rateBytes, cursor := 0, int64(0), 0
	bad := 0
	writeSum := func() {
		seq++
		// Reading every page proves the memory is still there and intact.
		sum, bad = r.verify()
		if err := writeFile(*dir, "sum", fmt.Sprintf("pid: %d\nseq: %d\ngen: %d\nrate-gen: %d\nrate-bytes: %d\nsum: %08x\nbad-blocks: %d\n",
			pid, seq, gen, rateGen, rateBytes, sum, bad)); err != nil {
			fmt.Fprintln(os.Stderr, "memhog:", err)
		}
	}
	for {
		select {
		case <-tick:
			writeSum()
		case <-step:
			cursor = r.rewriteRun(cursor, stepBytes, rw)
			rateGen++
			rateBytes += int64(stepBytes)
		case <-usr1:
			n := rewrite(mem, *pattern, *rewritePct, rw)
			r.record()
			gen++
			writeSum()
			if err := writeFile(*dir, "rewrite", fmt.Sprintf("pid: %d\ngen: %d\nsum: %08x\nbytes: %d\npattern: %s\n",
				pid, gen, sum, n, *pattern)); err != nil {
				fmt.Fprintln(os.Stderr, "memhog:", err)
			}
		}
		runtime.KeepAlive(mem)
	}
}

const (
	pageSize  = 4096
	blockSize = 64 << 10 // the unit of the recorded CRCs
)

// region is the memory with the CRC of every block as memhog last wrote it.
type region struct {
	mem    []byte
	blocks []uint32 // recorded CRC-32C of each blockSize block (the last may be shorter)
	fresh  []byte   // scratch: the recomputed CRCs, little-endian, for the sum
}

func newRegion(mem []byte) *region {
	n := (len(mem) + blockSize - 1) / blockSize
	r := &region{mem: mem, blocks: make([]uint32, n), fresh: make([]byte, 4*n)}
	r.record()
	return r
}

func (r *region) block(i int) []byte {
	return r.mem[i*blockSize : min((i+1)*blockSize, len(r.mem))]
}

// record recomputes and records the CRC of every block.
func (r *region) record() {
	for i := range r.blocks {
		r.blocks[i] = checksum(r.block(i))
	}
}

// verify recomputes every block's CRC from the pages and returns the
// region's checksum (the CRC of those CRCs) and how many blocks differ from
// what was recorded.
func (r *region) verify() (sum uint32, bad int) {
	for i := range r.blocks {
		c := checksum(r.block(i))
		if c != r.blocks[i] {
			bad++
		}
		binary.LittleEndian.PutUint32(r.fresh[4*i:], c)
	}
	return checksum(r.fresh), bad
}

// rewriteRun overwrites n bytes (whole pages) of the random half with fresh
// pseudo-random bytes from offset off on, wrapping around at the end of the
// half, records the CRCs of the blocks it touched and returns where the next
// run starts.
func (r *region) rewriteRun(off, n int, rng *rand.Rand) int {
	half := len(r.mem) / 2 / pageSize * pageSize
	if half == 0 {
		half = len(r.mem) / pageSize * pageSize
	}
	for n > 0 {
		if off >= half {
			off = 0
		}
		k := min(n, half-off)
		randomize(r.mem[off:off+k], rng)
		for b := off / blockSize; b <= (off+k-1)/blockSize; b++ {
			r.blocks[b] = checksum(r.block(b))
		}
		off += k
		n -= k
	}
	return off
}

// rewrite overwrites pct percent of mem, rounded to whole pages, with fresh
// pseudo-random bytes and returns how many bytes it rewrote. contiguous:
// one run from the start of the region (inside the random half, so the
// memory compresses as before), the same run every time. scattered: one
// page in every 100/pct, across both halves.
func rewrite(mem []byte, pattern string, pct float64, rng *rand.Rand) int {
	const page = pageSize
	pages := len(mem) / page
	want := int(float64(pages)*pct/100 + 0.5)
	if want < 1 {
		want = 1
	}
	if pattern == "contiguous" {
		randomize(mem[:want*page], rng)
		return want * page
	}
	stride := pages / want
	for i := 0; i < want; i++ {
		p := i * stride
		randomize(mem[p*page:(p+1)*page], rng)
	}
	return want * page
}

func randomize(b []byte, rng *rand.Rand) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	for ; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// fill writes every byte of mem: random first half, text second half.
func fill(mem []byte, seed uint64) {
	half := len(mem) / 2
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	randomize(mem[:half], rng)

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
