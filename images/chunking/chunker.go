// Package chunking cuts files into chunks and names chunks: FastCDC for most
// files, a cut between whole pages for CRIU's page images (pagechunker.go),
// and BLAKE3 names, or SHA-256 for chunks written before store format 2
// (hash.go). It holds no state beyond pooled buffers and knows nothing of
// where chunks are stored, manifests or keys: the images package does that.
package chunking

import (
	"hash/crc32"
	"io"
	"strings"
)

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
// MinChunk, a stricter mask before avgChunk and a looser one after it, which
// narrows the size distribution around the average, and a hard cut at
// MaxChunk.
//
// Changing any constant here or the gear table changes every cut point and so
// breaks deduplication against chunks already in existing stores.
const (
	MinChunk = 64 << 10
	avgChunk = 256 << 10
	MaxChunk = 1 << 20

	// Files smaller than SmallFile are cut finer.
	SmallFile = 4 << 20
)

// MaxDecoded bounds what one chunk may decompress to, so a hostile chunk
// received from a peer cannot exhaust memory. It is far above MaxChunk to
// leave room for a future chunker.
const MaxDecoded = 8 << 20

// Params are one set of FastCDC bounds and masks. The gear hash's high
// bits depend on the most recent 64 bytes and its low bits only on the last
// few, so the masks test high bits: two bits more than the average's before
// it and two fewer after is FastCDC's normalisation level 2.
type Params struct {
	min, avg, max         int
	maskStrict, maskLoose uint64
	// pages: cut only between 4 KiB pages, deciding by the CRC-32C of
	// the page that would start the next chunk (see pageChunks).
	pages bool
}

// Paged says whether p cuts only between pages, which NewPage's chunker
// does (New's would too, but slower).
func (p Params) Paged() bool { return p.pages }

func highBits(n int) uint64 { return uint64(1<<n-1) << (64 - n) }

var (
	// bigChunks: about 256 KiB, for the large pages-*.img.
	bigChunks = Params{min: MinChunk, avg: avgChunk, max: MaxChunk,
		maskStrict: highBits(20), maskLoose: highBits(16)}
	// smallChunks: about 16 KiB, for the small images that change on
	// every checkpoint of even an idle container (pages of its busy
	// processes, cores), so that a snapshot adds the changed pages and
	// not a whole 256 KiB chunk around them. Small files are few, so the
	// extra files cost little.
	smallChunks = Params{min: 4 << 10, avg: 16 << 10, max: 64 << 10,
		maskStrict: highBits(16), maskLoose: highBits(12)}
)

// Why CRIU's page images are cut differently: pages-N.img is nothing but
// whole 4 KiB pages, in address order, so whatever moves in it moves by
// whole pages. Cutting only between pages loses nothing of what CDC finds,
// and deciding by a checksum of one page (CRC-32C, which the CPU computes
// at many GB/s) instead of a rolling hash over every byte makes chunking
// nearly free: it was a quarter of the time that storing a checkpoint
// adds. The cut before a page depends on that page alone, so after an
// insertion or removal the cuts fall where they fell before from the next
// matching page on. The chunks are larger (about 1 MiB) because each is a
// file, and for the big page images file creation costs more than the
// coarser deduplication.
var pageChunks = Params{min: 256 << 10, avg: 1 << 20, max: MaxPageChunk,
	maskStrict: 1<<10 - 1, maskLoose: 1<<6 - 1, pages: true}

// MaxPageChunk is the largest chunk of a page image, for the buffers that
// hold one.
const MaxPageChunk = 4 << 20

// PageSize is the page of CRIU's page images.
const PageSize = 4096

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ParamsFor picks the chunk sizes for a file called name of size bytes.
func ParamsFor(name string, size int64) Params {
	switch {
	case size < SmallFile:
		return smallChunks
	case IsPageImage(name):
		return pageChunks
	}
	return bigChunks
}

// IsPageImage says whether name is one of CRIU's pages-N.img.
func IsPageImage(name string) bool {
	return strings.HasPrefix(name, "pages-") && strings.HasSuffix(name, ".img")
}

// Why chunks this large: every chunk is a file, and creating a file costs
// a few hundred microseconds on the ext4 of these machines, so 64 KiB chunks
// made storing 256 MiB of images take longer than CRIU took to dump it.

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
// p.max bytes means data is the end of the stream.
func cutPoint(data []byte, p Params) int {
	n := len(data)
	if n <= p.min {
		return n
	}
	if n > p.max {
		n = p.max
	}
	normal := min(p.avg, n)
	if p.pages {
		return pageCutPoint(data[:n], p)
	}
	var h uint64
	i := p.min
	for ; i < normal; i++ {
		h = h<<1 + gear[data[i]]
		if h&p.maskStrict == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + gear[data[i]]
		if h&p.maskLoose == 0 {
			return i + 1
		}
	}
	return n
}

// pageCutPoint is cutPoint for page images: the first page boundary from
// p.min on where the page starting there has a CRC-32C matching the mask
// (see pageCut), or the end of data. Chunks start on page boundaries, so
// these are page boundaries of the file too.
func pageCutPoint(data []byte, p Params) int {
	checked := 0
	if cut, ok := pageCut(p, data, &checked); ok {
		return cut
	}
	return len(data)
}

// Chunker splits a stream into content-defined chunks.
type Chunker struct {
	p          Params
	r          io.Reader
	buf        []byte
	start, end int
	eof        bool
}

func New(r io.Reader, p Params) *Chunker {
	return &Chunker{p: p, r: r, buf: make([]byte, 2*p.max)}
}

// next returns the next chunk, or io.EOF after the last one. The slice is only
// valid until the following call.
func (c *Chunker) Next() ([]byte, error) {
	if c.end-c.start < c.p.max && !c.eof {
		// Keep a full p.max window available so that cutPoint sees
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
	n := cutPoint(data, c.p)
	c.start += n
	return data[:n], nil
}
