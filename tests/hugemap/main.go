// Command hugemap does in a test's container what MariaDB's InnoDB, V8's
// cage or an ASAN shadow does: it reserves a huge range of address space
// (16 TiB, private, writable, MAP_NORESERVE) and uses a few pages of it.
// Not more: CRIU restores through the image streamer by premapping each
// VMA and moving it into place, which for a VMA that overlaps its premap
// takes a third range of its size, and 3 x 64 TiB do not fit in x86-64's
// 128 TiB of user address space ("Unable to reserve memory").
// It writes a known pattern into scattered pages, then, every second,
// checks them and writes "pid PID round N sum SUM ok|bad" to DIR/state,
// so that a test can checkpoint and restore it and see that it runs on
// (same pid, rounds going on) with its pages intact
// (tests/huge_reservation_test.go).
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// offsets are the pages written, spread over the reservation: its first
// and last page, and pages between that are far apart (each in its own
// window of CRIU's pagemap cache, patch 0012).
func offsets(size int) []int {
	page := os.Getpagesize()
	return []int{0, 3 * page, 1<<30 + 5*page, size / 3 &^ (page - 1), size/2 + 7*page, size - page}
}

func main() {
	dir := flag.String("dir", "/var/lib/hugemap", "where to write state")
	tib := flag.Int("tib", 16, "TiB of address space to reserve")
	flag.Parse()
	size := *tib << 40
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		log.Fatalf("reserve %d TiB: %v", *tib, err)
	}
	for _, off := range offsets(size) {
		copy(mem[off:off+os.Getpagesize()], pattern(off))
	}
	must(os.MkdirAll(*dir, 0o755))
	state := filepath.Join(*dir, "state")
	for round := 1; ; round++ {
		sum, ok := check(mem, size)
		line := fmt.Sprintf("pid %d round %d sum %x %s\n", os.Getpid(), round, sum, map[bool]string{true: "ok", false: "bad"}[ok])
		// Written whole then renamed: a reader never sees half a line.
		must(os.WriteFile(state+".tmp", []byte(line), 0o644))
		must(os.Rename(state+".tmp", state))
		time.Sleep(time.Second)
	}
}

// pattern is what the page at off holds: bytes that depend on off, none zero
// (CRIU does not dump a page of zeros).
func pattern(off int) []byte {
	p := make([]byte, os.Getpagesize())
	for i := range p {
		p[i] = byte(off>>12+i)%251 + 1
	}
	return p
}

// check sums the written pages and says whether each holds its pattern.
func check(mem []byte, size int) ([]byte, bool) {
	h := sha256.New()
	ok := true
	for _, off := range offsets(size) {
		pg := mem[off : off+os.Getpagesize()]
		h.Write(pg)
		ok = ok && bytes.Equal(pg, pattern(off))
	}
	return h.Sum(nil), ok
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
