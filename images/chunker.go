package images

import "io"

// Why content-defined chunking: CRIU writes a process's memory into
// pages-N.img as one contiguous run of every dumped page, ordered by address.
// When a container touches a few pages, or maps/unmaps a region, the images
// of two checkpoints share most of their bytes but at shifted offsets, so
// fixed-size blocks would all differ after the first change. A cut point
// chosen by a rolling hash depends only on the last 64 bytes before it, so
// after a change the chunker re-synchronises at the next cut point and the
// following chunks dedupe again. Cuts are not aligned to 4096-byte pages:
// plain CDC already re-synchronises, and alignment would only help
// pages-N.img, not the protobuf images and logs stored alongside it.
//
// The algorithm is FastCDC (Xia et al., 2016): a gear hash, no cut before
// minChunk, a stricter mask before avgChunk and a looser one after it, which
// narrows the size distribution around the average, and a hard cut at
// maxChunk.
//
// Changing any constant here or the gear table changes every cut point and so
// breaks deduplication against chunks already in existing stores.
const (
	minChunk = 64 << 10
	avgChunk = 256 << 10
	maxChunk = 1 << 20

	// The gear hash's high bits depend on the most recent 64 bytes and its
	// low bits only on the last few, so the masks test high bits. 20 bits
	// before the average and 16 after is FastCDC's normalisation level 2
	// around 2^18.
	maskStrict = uint64(1<<20-1) << (64 - 20)
	maskLoose  = uint64(1<<16-1) << (64 - 16)
)

// Why chunks this large: every chunk is a file, and creating a file costs
// a few hundred microseconds on the ext4 of these machines, so 64 KiB chunks
// made storing 256 MiB of images take longer than CRIU took to dump it.
// Dedup across checkpoints of an idle container is as good with 256 KiB.

// gear maps each byte to a random 64-bit value. It is generated from a fixed
// seed with splitmix64 rather than stored as a literal so it is short to read
// and, being deterministic, identical on every host.
var gear = func() (t [256]uint64) {
	x := uint64(0x6374726673) // "ctrfs"
	for i := range t {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		t[i] = z ^ (z >> 31)
	}
	return t
}()

// cutPoint returns the length of the first chunk of data. Passing fewer than
// maxChunk bytes means data is the end of the stream.
func cutPoint(data []byte) int {
	n := len(data)
	if n <= minChunk {
		return n
	}
	if n > maxChunk {
		n = maxChunk
	}
	normal := min(avgChunk, n)
	var h uint64
	i := minChunk
	for ; i < normal; i++ {
		h = h<<1 + gear[data[i]]
		if h&maskStrict == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + gear[data[i]]
		if h&maskLoose == 0 {
			return i + 1
		}
	}
	return n
}

// chunker splits a stream into content-defined chunks.
type chunker struct {
	r          io.Reader
	buf        []byte
	start, end int
	eof        bool
}

func newChunker(r io.Reader) *chunker {
	return &chunker{r: r, buf: make([]byte, 2*maxChunk)}
}

// next returns the next chunk, or io.EOF after the last one. The slice is only
// valid until the following call.
func (c *chunker) next() ([]byte, error) {
	if c.end-c.start < maxChunk && !c.eof {
		// Keep a full maxChunk window available so that cutPoint sees
		// the same bytes however the reader splits its reads.
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
		for c.end < len(c.buf) {
			n, err := c.r.Read(c.buf[c.end:])
			c.end += n
			if err == io.EOF {
				c.eof = true
				break
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if c.start == c.end {
		return nil, io.EOF
	}
	data := c.buf[c.start:c.end]
	n := cutPoint(data)
	c.start += n
	return data[:n], nil
}
