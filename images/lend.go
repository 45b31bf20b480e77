package images

import (
	"io"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Why memory images are lent to CRIU's pipe rather than written into it:
// a restore streamed from the store reads every page of the container
// through a pipe, and a write() copies each page into the pipe before
// CRIU copies it out again. With 256 MiB of memory that extra copy, on a
// core CRIU also needs, was most of what a streamed restore spent beyond
// a raw one reading the same pages from a file (lend_bench_test.go: 0.29
// s against 0.13-0.18 s; lent, 0.16-0.21 s). vmsplice() puts references
// to the decoded buffer's pages into the pipe instead, and CRIU's read()
// copies them once, as it does from a file's page cache.
//
// The price is that the pipe reads the buffer after vmsplice returns, so
// it must not be reused (or freed) until CRIU has read it. A pipe holds at
// most its size in pages, and each page reference or written page carries
// at most a page of data: once the size of the pipe in bytes has gone in
// after a buffer, every page of it has been read out. So a buffer is lent
// only when at least that much of the image follows it, and it is reused
// only once that much has followed; the image's tail is written, copied,
// and when an image has been sent, every buffer lent for it is free again.
//
// Only memory images (pages-*.img) are lent: CRIU reads those with read()
// alone, in order (criu/pagemap.c, maybe_read_page_img_streamer). A reader
// that moved the references on with splice() or tee() would keep them past
// that rule.

// lendable says whether an image's bytes may be lent to CRIU's pipe.
func lendable(name string) bool {
	return strings.HasPrefix(name, "pages-") && strings.HasSuffix(name, ".img")
}

// imagePipe is the write end of the pipe CRIU reads one image from, non-
// blocking (receiveFile), counting what it is given in served.
type imagePipe struct {
	f            *os.File
	served, lent *atomic.Int64
	// lendOK is set when buffers may be lent (lendable, and the pipe's
	// size known): reuseAfter is that size in bytes.
	lendOK     bool
	reuseAfter int64
}

func newImagePipe(f *os.File, name string, served, lent *atomic.Int64) *imagePipe {
	p := &imagePipe{f: f, served: served, lent: lent}
	if lendable(name) {
		if size, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0); err == nil && size > 0 {
			p.lendOK, p.reuseAfter = true, int64(size)
		}
	}
	return p
}

func (p *imagePipe) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.served.Add(int64(n))
	return n, err
}

// lend puts references to b's pages into the pipe (see above for when b
// may be used again).
func (p *imagePipe) lend(b []byte) error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			iov := []unix.Iovec{{Base: &b[0]}}
			iov[0].SetLen(len(b))
			n, err := unix.Vmsplice(int(fd), iov, unix.SPLICE_F_NONBLOCK)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // full: wait until CRIU reads
			case err != nil:
				serr = &os.PathError{Op: "vmsplice", Path: p.f.Name(), Err: err}
				return true
			}
			b = b[n:]
			p.served.Add(int64(n))
			p.lent.Add(int64(n))
		}
		return true
	})
	if serr != nil {
		return serr
	}
	return err
}

// lentBuffers gives an image's bytes to w and tracks the buffers lent
// until they may be reused: in order, each with how much of the image had
// gone into the pipe once it had.
type lentBuffers struct {
	w     io.Writer
	pipe  *imagePipe // w, if it may take buffers by reference
	sent  int64      // bytes of the image given to w so far
	lent  []lentBuffer
	total int64 // the image's size
}

// newLentBuffers is lentBuffers for an image of total bytes written to w.
func newLentBuffers(w io.Writer, total int64) *lentBuffers {
	l := &lentBuffers{w: w, total: total}
	if p, ok := w.(*imagePipe); ok && p.lendOK {
		l.pipe = p
	}
	return l
}

// lending says whether the image goes to a pipe that takes buffers by
// reference.
func (l *lentBuffers) lending() bool { return l.pipe != nil }

type lentBuffer struct {
	buf []byte
	end int64 // sent when the buffer had gone in
}

// put gives data, the image's next bytes, to w: lent when w is a pipe that
// may take it by reference and enough of the image follows, written
// otherwise. It returns the buffers that may be reused now, data among
// them if it was copied.
func (l *lentBuffers) put(data []byte) (reusable [][]byte, err error) {
	lend := l.lending() && l.total-(l.sent+int64(len(data))) >= l.pipe.reuseAfter
	if lend {
		err = l.pipe.lend(data)
	} else {
		_, err = l.w.Write(data)
	}
	l.sent += int64(len(data))
	if lend {
		l.lent = append(l.lent, lentBuffer{data, l.sent})
	} else {
		reusable = append(reusable, data)
	}
	for len(l.lent) > 0 && l.sent-l.lent[0].end >= l.pipe.reuseAfter {
		reusable = append(reusable, l.lent[0].buf)
		l.lent = l.lent[1:]
	}
	return reusable, err
}
