package chunking

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"ctrfs/images/internal/testbytes"
)

func chunkSizes(t *testing.T, r io.Reader) (sizes []int, joined []byte) {
	return chunkSizesWith(t, r, bigChunks)
}

func chunkSizesWith(t *testing.T, r io.Reader, p Params) (sizes []int, joined []byte) {
	t.Helper()
	c := New(r, p)
	for {
		data, err := c.Next()
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
	for _, p := range []Params{bigChunks, smallChunks} {
		data := testbytes.Rand(7, 128*p.avg)
		sizes, joined := chunkSizesWith(t, bytes.NewReader(data), p)
		testbytes.Same(t, "reassembled", joined, data)
		for i, n := range sizes[:len(sizes)-1] {
			if n < p.min || n > p.max {
				t.Fatalf("chunk %d has size %d, outside [%d, %d]", i, n, p.min, p.max)
			}
		}
		avg := len(data) / len(sizes)
		t.Logf("%d chunks, average %d bytes", len(sizes), avg)
		if avg < p.avg*3/4 || avg > p.avg*3/2 {
			t.Fatalf("average chunk %d, want about %d", avg, p.avg)
		}
	}
}

// Cut points must not depend on how the reader splits its reads, or the
// same content read from a pipe and from a file would not dedupe.
func TestChunkerIndependentOfReads(t *testing.T) {
	data := testbytes.Rand(8, 3<<20+123)
	want, _ := chunkSizes(t, bytes.NewReader(data))
	for name, r := range map[string]io.Reader{
		"half":    iotest.HalfReader(bytes.NewReader(data)),
		"onebyte": iotest.OneByteReader(bytes.NewReader(data)),
	} {
		got, joined := chunkSizes(t, r)
		testbytes.Same(t, name, joined, data)
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
	sizes, _ := chunkSizes(t, bytes.NewReader(testbytes.Rand(1, 1<<20)))
	want := []int{276137, 81930, 324122, 297736, 68651}
	if len(sizes) != len(want) {
		t.Fatalf("got %d chunks %v, want %v", len(sizes), sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("chunk sizes %v, want %v", sizes, want)
		}
	}
	sizes, _ = chunkSizesWith(t, bytes.NewReader(testbytes.Rand(1, 64<<10)), smallChunks)
	if fmt.Sprint(sizes) != "[19123 5252 16622 24539]" {
		t.Fatalf("small chunk sizes %v, want [19123 5252 16622 24539]", sizes)
	}
	const pageSizes = "[1318912 1343488 1146880 630784 1323008 647168 1454080 1159168 1052672 487424 1290240 1564672 1097728 1150976 1110016]"
	sizes, _ = chunkSizesWith(t, bytes.NewReader(testbytes.Rand(1, 16<<20)), pageChunks)
	if fmt.Sprint(sizes) != pageSizes {
		t.Fatalf("page chunk sizes %v, want %s", sizes, pageSizes)
	}
}

func TestChunkerSmallAndEmpty(t *testing.T) {
	for _, n := range []int{0, 1, MinChunk - 1, MinChunk, MinChunk + 1, MaxChunk, MaxChunk + 1} {
		data := testbytes.Rand(uint64(n), n)
		sizes, joined := chunkSizes(t, bytes.NewReader(data))
		testbytes.Same(t, "reassembled", joined, data)
		if n == 0 && len(sizes) != 0 {
			t.Fatalf("empty input gave chunks %v", sizes)
		}
		if n > 0 && n <= MinChunk && len(sizes) != 1 {
			t.Fatalf("%d bytes gave chunks %v, want one", n, sizes)
		}
	}
}

// Page images are cut between pages only, within the bounds, and a page
// inserted or removed near the start changes only the chunks around it.
func TestPageChunkerAlignsAndResyncs(t *testing.T) {
	const pages = 16 << 20 / PageSize
	data := testbytes.Rand(3, pages*PageSize)
	sizes, joined := chunkSizesWith(t, bytes.NewReader(data), pageChunks)
	testbytes.Same(t, "reassembled", joined, data)
	for i, n := range sizes[:len(sizes)-1] {
		if n%PageSize != 0 || n < pageChunks.min || n > pageChunks.max {
			t.Fatalf("chunk %d has size %d: not whole pages within [%d, %d]", i, n, pageChunks.min, pageChunks.max)
		}
	}
	t.Logf("%d chunks, average %d bytes", len(sizes), len(data)/len(sizes))

	chunksOf := func(b []byte) map[string]bool {
		set := map[string]bool{}
		c := New(bytes.NewReader(b), pageChunks)
		for {
			d, err := c.Next()
			if err == io.EOF {
				return set
			}
			set[HashOf(d)] = true
		}
	}
	before := chunksOf(data)
	at := 100 * PageSize
	inserted := append(append(append([]byte(nil), data[:at]...), testbytes.Rand(4, PageSize)...), data[at:]...)
	removed := append(append([]byte(nil), data[:at]...), data[at+PageSize:]...)
	for name, b := range map[string][]byte{"inserted": inserted, "removed": removed} {
		after := chunksOf(b)
		changed := 0
		for h := range after {
			if !before[h] {
				changed++
			}
		}
		if changed > 2 {
			t.Errorf("a page %s changed %d of %d chunks; want at most 2", name, changed, len(after))
		}
	}
}

func TestParamsFor(t *testing.T) {
	for _, c := range []struct {
		name string
		size int64
		want Params
	}{
		{"pages-1.img", SmallFile, pageChunks},
		{"pages-1.img", SmallFile - 1, smallChunks},
		{"core-1.img", 1 << 10, smallChunks},
		{"rootfs.tar", 1 << 30, bigChunks},
	} {
		if got := ParamsFor(c.name, c.size); got != c.want {
			t.Errorf("ParamsFor(%q, %d) = %+v", c.name, c.size, got)
		}
	}
}

// The page chunker reads into the chunks' own buffers but must cut exactly
// where the window chunker cuts with pageChunks, however its reads split.
func TestPageChunkerCutsAsWindowChunker(t *testing.T) {
	for _, size := range []int{0, 1, PageSize, pageChunks.min - 1, pageChunks.min + PageSize + 17,
		pageChunks.max, pageChunks.max + 1, 24<<20 + 3*PageSize, 9<<20 + 100} {
		data := testbytes.Rand(uint64(size)+5, size)
		// Repetitive stretches too: runs of one page repeated, which cut
		// the same way everywhere or nowhere.
		if size > 8<<20 {
			for i := 2 << 20; i < 6<<20; i += PageSize {
				copy(data[i:i+PageSize], data[:PageSize])
			}
		}
		want, _ := chunkSizesWith(t, bytes.NewReader(data), pageChunks)
		for name, r := range map[string]io.Reader{
			"whole": bytes.NewReader(data),
			"half":  iotest.HalfReader(bytes.NewReader(data)),
			"odd":   &oddReader{r: bytes.NewReader(data)},
		} {
			pc := NewPage(r)
			var got []int
			var joined []byte
			for {
				d, err := pc.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, len(d))
				joined = append(joined, d...)
				PutPageBuffer(d)
			}
			testbytes.Same(t, name, joined, data)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%d bytes, %s reads: page Chunker cut %v, window Chunker %v", size, name, got, want)
			}
		}
	}
}

// oddReader returns reads of ever-changing odd sizes.
type oddReader struct {
	r io.Reader
	n int
}

func (o *oddReader) Read(p []byte) (int, error) {
	o.n = (o.n*7 + 4093) % 70001
	return o.r.Read(p[:min(len(p), o.n+1)])
}
