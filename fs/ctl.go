package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// ctlFile takes one command per write and returns when it has finished, so
// that `echo start > ctl` exits 0 exactly when the command succeeded.
// Reading it lists the commands. It is a container's ctl and the mount's
// top-level one.
type ctlFile struct {
	gofs.Inode
	help string
	// idle, if set, fails while a command is under way (see Open).
	idle func() error
	run  func(line string) error
}

var (
	_ gofs.NodeOpener    = (*ctlFile)(nil)
	_ gofs.NodeGetattrer = (*ctlFile)(nil)
	_ gofs.NodeSetattrer = (*ctlFile)(nil)
)

// containerCtl is containers/NAME/ctl.
func containerCtl(c *containerDir) *ctlFile {
	return &ctlFile{help: ops.CtlHelp, run: c.run,
		idle: func() error { return c.m.CheckIdle(c.Name()) }}
}

func (f *ctlFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	out.Size = uint64(len(f.help))
	return 0
}

// Setattr accepts the truncation that `>` asks for; there is nothing to cut.
func (f *ctlFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.Getattr(ctx, fh, out)
}

// Open for writing fails with EBUSY while a command is under way. Writes
// may run in parallel (FOPEN_PARALLEL_DIRECT_WRITES), so that one through
// a descriptor opened earlier reaches ops and gets its EBUSY there instead
// of queueing behind the inode lock.
func (f *ctlFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 && f.idle != nil {
		if err := f.idle(); err != nil {
			return nil, 0, errno(err)
		}
	}
	h := &ctlHandle{f: f, bytesHandle: bytesHandle{data: []byte(f.help)}}
	return h, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES, 0
}

type ctlHandle struct {
	bytesHandle
	f *ctlFile
}

var _ gofs.FileWriter = (*ctlHandle)(nil)

func (h *ctlHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if err := h.f.run(string(data)); err != nil {
		return 0, errno(err)
	}
	return uint32(len(data)), 0
}

// configFile is a text file of the container that root may edit: the
// LXC config (writable while the container is STOPPED) and its CRIU
// options (writable always). Writes collect in the handle and replace the
// file at flush (close).
type configFile struct {
	gofs.Inode
	c        *containerDir
	read     func(name string) ([]byte, error)
	writable func(name string) error
	write    func(name string, data []byte) error
}

func newConfigFile(c *containerDir) *configFile {
	return &configFile{c: c, read: c.m.Config, writable: c.m.CheckConfigWritable, write: c.m.SetConfig}
}

func newCriuFile(c *containerDir) *configFile {
	always := func(string) error { return nil }
	return &configFile{c: c, read: c.m.CriuOptions, writable: always, write: c.m.SetCriuOptions}
}

var (
	_ gofs.NodeOpener    = (*configFile)(nil)
	_ gofs.NodeGetattrer = (*configFile)(nil)
	_ gofs.NodeSetattrer = (*configFile)(nil)
)

func (f *configFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	if h, ok := fh.(*configHandle); ok {
		out.Size = uint64(len(h.data))
		return 0
	}
	data, err := f.read(f.c.Name())
	if err != nil {
		return errno(err)
	}
	out.Size = uint64(len(data))
	return 0
}

func (f *configFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		h, isOurs := fh.(*configHandle)
		if !isOurs {
			// The kernel truncates for open(O_TRUNC) without naming the
			// handle; that open already started from an empty buffer.
			if err := f.writable(f.c.Name()); err != nil {
				return errno(err)
			}
			return f.Getattr(ctx, nil, out)
		}
		if !h.writable {
			return syscall.EACCES
		}
		h.mu.Lock()
		if int(sz) < len(h.data) {
			h.data = h.data[:sz]
		}
		h.dirty = true
		h.mu.Unlock()
	}
	return f.Getattr(ctx, fh, out)
}

func (f *configFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	name := f.c.Name()
	h := &configHandle{f: f}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		if err := f.writable(name); err != nil {
			return nil, 0, errno(err)
		}
		h.writable = true
	}
	if flags&syscall.O_TRUNC == 0 {
		data, err := f.read(name)
		if err != nil {
			return nil, 0, errno(err)
		}
		h.data = data
	} else {
		h.dirty = true
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

type configHandle struct {
	bytesHandle
	f        *configFile
	writable bool
	dirty    bool
}

var (
	_ gofs.FileWriter  = (*configHandle)(nil)
	_ gofs.FileFlusher = (*configHandle)(nil)
)

func (h *configHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if end := int(off) + len(data); end > len(h.data) {
		h.data = append(h.data, make([]byte, end-len(h.data))...)
	}
	copy(h.data[off:], data)
	h.dirty = true
	return uint32(len(data)), 0
}

func (h *configHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.writable || !h.dirty {
		return 0
	}
	h.dirty = false
	return errno(h.f.write(h.f.c.Name(), append([]byte(nil), h.data...)))
}
