package images

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func chunkSizes(t *testing.T, r io.Reader) (sizes []int, joined []byte) {
	t.Helper()
	c := newChunker(r)
	for {
		data, err := c.next()
		if err == io.EOF {
			return sizes, joined
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(data))
		joined = append(joined, data...)
	}
}

func TestChunkerBoundsAndAverage(t *testing.T) {
	data := randBytes(7, 32<<20)
	sizes, joined := chunkSizes(t, bytes.NewReader(data))
	sameBytes(t, "reassembled", joined, data)
	for i, n := range sizes[:len(sizes)-1] {
		if n < minChunk || n > maxChunk {
			t.Fatalf("chunk %d has size %d, outside [%d, %d]", i, n, minChunk, maxChunk)
		}
	}
	avg := len(data) / len(sizes)
	t.Logf("%d chunks, average %d bytes", len(sizes), avg)
	if avg < avgChunk*3/4 || avg > avgChunk*3/2 {
		t.Fatalf("average chunk %d, want about %d", avg, avgChunk)
	}
}

// Cut points must not depend on how the reader splits its reads, or the
// same content read from a pipe and from a file would not dedupe.
func TestChunkerIndependentOfReads(t *testing.T) {
	data := randBytes(8, 3<<20+123)
	want, _ := chunkSizes(t, bytes.NewReader(data))
	for name, r := range map[string]io.Reader{
		"half":    iotest.HalfReader(bytes.NewReader(data)),
		"onebyte": iotest.OneByteReader(bytes.NewReader(data)),
	} {
		got, joined := chunkSizes(t, r)
		sameBytes(t, name, joined, data)
		if len(got) != len(want) {
			t.Fatalf("%s: %d chunks, want %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: chunk %d is %d bytes, want %d", name, i, got[i], want[i])
			}
		}
	}
}

// Existing stores dedupe only if cut points never change, so pin a few.
func TestChunkerStable(t *testing.T) {
	sizes, _ := chunkSizes(t, bytes.NewReader(randBytes(1, 1<<20)))
	want := []int{276137, 81930, 324122, 297736, 68651}
	if len(sizes) != len(want) {
		t.Fatalf("got %d chunks %v, want %v", len(sizes), sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("chunk sizes %v, want %v", sizes, want)
		}
	}
}

func TestChunkerSmallAndEmpty(t *testing.T) {
	for _, n := range []int{0, 1, minChunk - 1, minChunk, minChunk + 1, maxChunk, maxChunk + 1} {
		data := randBytes(uint64(n), n)
		sizes, joined := chunkSizes(t, bytes.NewReader(data))
		sameBytes(t, "reassembled", joined, data)
		if n == 0 && len(sizes) != 0 {
			t.Fatalf("empty input gave chunks %v", sizes)
		}
		if n > 0 && n <= minChunk && len(sizes) != 1 {
			t.Fatalf("%d bytes gave chunks %v, want one", n, sizes)
		}
	}
}
