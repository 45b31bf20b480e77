package fs

import (
	"context"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// genFile is a read-only file whose content is generated when it is opened
// (and when its size is asked for). Reads are direct I/O: the kernel must not
// cache what changes with every container operation.
type genFile struct {
	gofs.Inode
	content func() ([]byte, error)
	mode    uint32           // permission bits; modePublic unless set
	mtime   func() time.Time // when the content last changed; now if nil
	// costly content is made only at open: a stat shows size 0, as /proc
	// files do, and tools read such files to their end.
	costly bool
}

var (
	_ gofs.NodeOpener    = (*genFile)(nil)
	_ gofs.NodeGetattrer = (*genFile)(nil)
	_ gofs.NodeSetattrer = (*genFile)(nil)
)

func newGenFile(content func() ([]byte, error)) *genFile {
	return &genFile{content: content, mode: modePublic}
}

func staticFile(s string, since time.Time) *genFile {
	return newGenFile(func() ([]byte, error) { return []byte(s), nil }).changed(func() time.Time { return since })
}

// changed sets what the file's times are.
func (f *genFile) changed(mtime func() time.Time) *genFile {
	f.mtime = mtime
	return f
}

// madeAtOpen marks content too costly to make for a stat (see costly).
func (f *genFile) madeAtOpen() *genFile {
	f.costly = true
	return f
}

// private makes the file root's alone (mode 0400).
func (f *genFile) private() *genFile {
	f.mode = modeMemory
	return f
}

func (f *genFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | f.mode
	if f.mtime != nil {
		setTimes(out, f.mtime())
	} else {
		setTimes(out, time.Now())
	}
	if h, ok := fh.(*bytesHandle); ok {
		out.Size = uint64(len(h.data))
		return 0
	}
	if f.costly {
		return 0
	}
	data, err := f.content()
	if err != nil {
		return errno(err)
	}
	out.Size = uint64(len(data))
	return 0
}

func (f *genFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, f, fh, in, out)
}

func (f *genFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if e := readOnlyOpen(flags); e != 0 {
		return nil, 0, e
	}
	data, err := f.content()
	if err != nil {
		return nil, 0, errno(err)
	}
	return &bytesHandle{data: data}, fuse.FOPEN_DIRECT_IO, 0
}

// readOnlyOpen refuses to open a read-only file for writing (EACCES), and
// a truncating open (EPERM): the kernel leaves O_TRUNC to the open
// (FUSE_ATOMIC_O_TRUNC, see Options).
func readOnlyOpen(flags uint32) syscall.Errno {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return syscall.EACCES
	}
	if flags&syscall.O_TRUNC != 0 {
		return syscall.EPERM
	}
	return 0
}

// bytesHandle serves reads from a snapshot of the content taken at open.
type bytesHandle struct {
	mu   sync.Mutex
	data []byte
}

var _ gofs.FileReader = (*bytesHandle)(nil)

func (h *bytesHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fuse.ReadResultData(slice(h.data, off, len(dest))), 0
}

func slice(data []byte, off int64, n int) []byte {
	if off >= int64(len(data)) {
		return nil
	}
	end := off + int64(n)
	if end > int64(len(data)) {
		end = int64(len(data))
	}
	return data[off:end]
}
