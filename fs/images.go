package fs

import (
	"context"
	"io"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// imageDir is a directory of CRIU image files kept in the store: a
// container's state/, or a stateful snapshot's. It shows whatever set source
// returns at the time, so it follows new checkpoints, and it is gone (ENOENT)
// while there is none. Besides CRIU's files it has `ps`, the process tree
// decoded from them.
type imageDir struct {
	gofs.Inode
	c      *containerDir // whose memory it holds
	source func() (*ops.ImageSet, error)
}

// psName is the generated process listing; CRIU never writes a file by
// that name.
const psName = "ps"

var (
	_ gofs.NodeLookuper  = (*imageDir)(nil)
	_ gofs.NodeReaddirer = (*imageDir)(nil)
	_ gofs.NodeGetattrer = (*imageDir)(nil)
	_ gofs.NodeSetattrer = (*imageDir)(nil)
	_ gofs.NodeUnlinker  = (*imageDir)(nil)
)

func (d *imageDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	set, err := d.source()
	if err != nil {
		return errno(err)
	}
	out.Mode = syscall.S_IFDIR | modeMemDir
	out.Nlink = 2
	setTimes(out, set.Created())
	return 0
}

func (d *imageDir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, d, fh, in, out)
}

// Unlink is refused: the images are the container's saved processes.
func (d *imageDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.c.refuseRemoval(ctx)
}

// created is when the images were saved; the zero time once they are gone.
func (d *imageDir) created() time.Time {
	if set, err := d.source(); err == nil {
		return set.Created()
	}
	return time.Time{}
}

func (d *imageDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	set, err := d.source()
	if err != nil {
		return nil, errno(err)
	}
	files := set.Files()
	entries := make([]fuse.DirEntry, 0, len(files)+1)
	for _, f := range files {
		entries = append(entries, fuse.DirEntry{Name: f.Name, Mode: syscall.S_IFREG})
	}
	entries = append(entries, fuse.DirEntry{Name: psName, Mode: syscall.S_IFREG})
	return gofs.NewListDirStream(entries), 0
}

func (d *imageDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	set, err := d.source()
	if err != nil {
		return nil, errno(err)
	}
	var node gofs.InodeEmbedder
	if name == psName {
		node = newGenFile(func() ([]byte, error) {
			set, err := d.source()
			if err != nil {
				return nil, err
			}
			return set.PS()
		}).changed(d.created).private()
	} else {
		if _, _, err := set.Open(name); err != nil {
			return nil, errno(err)
		}
		node = &imageFile{dir: d, name: name}
	}
	if ch := d.GetChild(name); ch != nil {
		return ch, 0
	}
	return d.NewInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
}

// imageFile is one CRIU image file, decompressed as it is read.
type imageFile struct {
	gofs.Inode
	dir  *imageDir
	name string
}

var (
	_ gofs.NodeOpener    = (*imageFile)(nil)
	_ gofs.NodeGetattrer = (*imageFile)(nil)
	_ gofs.NodeSetattrer = (*imageFile)(nil)
)

func (f *imageFile) open() (io.ReaderAt, int64, error) {
	set, err := f.dir.source()
	if err != nil {
		return nil, 0, err
	}
	return set.Open(f.name)
}

func (f *imageFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	set, err := f.dir.source()
	if err != nil {
		return errno(err)
	}
	_, size, err := set.Open(f.name)
	if err != nil {
		return errno(err)
	}
	if h, ok := fh.(*imageHandle); ok {
		size = h.size
	}
	out.Mode = syscall.S_IFREG | modeMemory
	out.Nlink = 1
	out.Size = uint64(size)
	setTimes(out, set.Created())
	return 0
}

func (f *imageFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, f, fh, in, out)
}

func (f *imageFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if e := readOnlyOpen(flags); e != 0 {
		return nil, 0, e
	}
	r, size, err := f.open()
	if err != nil {
		return nil, 0, errno(err)
	}
	// Direct I/O: a later checkpoint reuses this name with other bytes.
	return &imageHandle{r: r, size: size}, fuse.FOPEN_DIRECT_IO, 0
}

// imageHandle reads the version of the file that was current at open.
type imageHandle struct {
	r    io.ReaderAt
	size int64
}

var _ gofs.FileReader = (*imageHandle)(nil)

func (h *imageHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= h.size {
		return fuse.ReadResultData(nil), 0
	}
	n, err := h.r.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}
