package chunking

import (
	"hash/crc32"
	"io"
	"sync"
)

// Why a chunker of its own for page images: their cuts depend on one page
// at a time (see pageChunks), not on a window of bytes, so pages can be
// read straight into the buffer of the chunk they belong to. The window
// Chunker copies every byte twice more on the way (to keep its window
// whole, then to hand a chunk over), and storing a checkpoint waits on
// that: it cuts alone what every worker hashes and compresses.

// pageBuffers recycles the buffers of page-image chunks, pageChunks.max
// bytes each: a checkpoint cuts hundreds of megabytes into them, and fresh
// buffers cost a page fault per 4 KiB and work for the GC.
var pageBuffers = sync.Pool{New: func() any {
	b := make([]byte, pageChunks.max)
	return &b
}}

func getPageBuffer() []byte { return (*pageBuffers.Get().(*[]byte))[:0] }

func PutPageBuffer(b []byte) {
	if cap(b) == pageChunks.max {
		b = b[:0]
		pageBuffers.Put(&b)
	}
}

// pageReadSize is how much the page chunker asks for at a time; what it
// read past a cut is copied to the next chunk's buffer, so it is small.
const pageReadSize = 128 << 10

// PageChunker cuts a stream exactly as Chunker does with pageChunks. The
// chunks it returns are the caller's, in buffers from pageBuffers.
type PageChunker struct {
	r       io.Reader
	pending []byte // read past the last cut: the start of the next chunk
	eof     bool
}

func NewPage(r io.Reader) *PageChunker { return &PageChunker{r: r} }

// next returns the next chunk, or io.EOF after the last one.
func (c *PageChunker) Next() ([]byte, error) {
	buf := c.pending
	c.pending = nil
	if buf == nil {
		buf = getPageBuffer()
	}
	checked := 0 // pages before it do not start the next chunk
	for {
		if cut, ok := pageCut(pageChunks, buf, &checked); ok {
			if cut < len(buf) {
				c.pending = append(getPageBuffer(), buf[cut:]...)
			}
			return buf[:cut], nil
		}
		if c.eof {
			if len(buf) == 0 {
				PutPageBuffer(buf)
				return nil, io.EOF
			}
			return buf, nil
		}
		n, err := c.r.Read(buf[len(buf):min(len(buf)+pageReadSize, pageChunks.max)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			return nil, err
		}
	}
}

// pageCut decides where a chunk of a page image ends, as far as buf (the
// chunk's bytes read so far) tells: at the first page from *checked on,
// and from p.min on, whose CRC-32C matches the mask (the strict one
// before p.avg), or at p.max; false if buf does not tell yet. It advances
// *checked past the pages it looked at, so that a chunk still being read
// is never checked twice.
func pageCut(p Params, buf []byte, checked *int) (int, bool) {
	i := max(*checked, p.min)
	for ; i+PageSize <= len(buf); i += PageSize {
		mask := p.maskLoose
		if i < p.avg {
			mask = p.maskStrict
		}
		if uint64(crc32.Checksum(buf[i:i+PageSize], castagnoli))&mask == 0 {
			return i, true
		}
	}
	*checked = i
	if len(buf) >= p.max {
		return p.max, true
	}
	return 0, false
}
