package fs

import (
	"context"
	"syscall"
	"time"

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
	// changed is when the last command was written.
	changed func() time.Time
}

var (
	_ gofs.NodeOpener    = (*ctlFile)(nil)
	_ gofs.NodeGetattrer = (*ctlFile)(nil)
	_ gofs.NodeSetattrer = (*ctlFile)(nil)
)

// containerCtl is containers/NAME/ctl.
func containerCtl(c *containerDir) *ctlFile {
	return &ctlFile{help: ops.CtlHelp, run: c.run,
		idle:    func() error { return c.m.CheckIdle(c.Name()) },
		changed: func() time.Time { return c.times().Changed }}
}

func (f *ctlFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | modeControl
	out.Size = uint64(len(f.help))
	setTimes(out, f.changed()) // the last command
	return 0
}

// Setattr accepts ftruncate(fd, 0) of a descriptor open for writing, which
// is how some tools (dd) start writing a file: there is nothing to cut.
// Any other truncation, chmod, chown or utimes is EPERM. (The O_TRUNC of
// `echo start > ctl` comes with the open.)
func (f *ctlFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		if _, isOurs := fh.(*ctlHandle); !isOurs || sz != 0 || changesOwnerOrMode(in) {
			return syscall.EPERM
		}
		return f.Getattr(ctx, fh, out)
	}
	return refuseSetattr(ctx, f, fh, in, out)
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
	// attr is what a stat shows: a stat, not a read.
	attr func(name string) (ops.FileAttr, error)
}

func newConfigFile(c *containerDir) *configFile {
	return &configFile{c: c, read: c.f.Config, writable: c.f.CheckConfigWritable, write: c.f.SetConfig,
		attr: c.f.ConfigAttr}
}

func newCriuFile(c *containerDir) *configFile {
	always := func(string) error { return nil }
	return &configFile{c: c, read: c.f.CriuOptions, writable: always, write: c.f.SetCriuOptions,
		attr: c.f.CriuOptionsAttr}
}

var (
	_ gofs.NodeOpener    = (*configFile)(nil)
	_ gofs.NodeGetattrer = (*configFile)(nil)
	_ gofs.NodeSetattrer = (*configFile)(nil)
)

// maxConfig bounds a config: LXC configs are a few KiB, and a write far
// past the end (dd seek=1T) must not make the daemon allocate up to it.
const maxConfig = 1 << 20

func (f *configFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | modeSecret
	a, err := f.attr(f.c.Name())
	if h, ok := fh.(*configHandle); ok {
		// An open descriptor outlives the container: its fstat works.
		setTimes(out, a.Mtime)
		h.mu.Lock()
		out.Size = uint64(len(h.data))
		h.mu.Unlock()
		return 0
	}
	if err != nil {
		return errno(err)
	}
	setTimes(out, a.Mtime)
	out.Size = uint64(a.Size)
	return 0
}

// Setattr honours truncation: ftruncate(2) resizes what the descriptor will
// write at close; truncate(2) of the path replaces the config at once (LXC
// must accept it). Beyond maxConfig is EFBIG; chmod, chown and utimes are
// EPERM.
func (f *configFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	sz, ok := in.GetSize()
	if !ok {
		return refuseSetattr(ctx, f, fh, in, out)
	}
	if changesOwnerOrMode(in) {
		return syscall.EPERM
	}
	if h, isOurs := fh.(*configHandle); isOurs {
		if !h.writable {
			return syscall.EACCES
		}
		h.mu.Lock()
		if sz > maxConfig {
			h.tooBig = true
		} else {
			h.data = resize(h.data, int(sz))
			h.dirty = true
		}
		h.mu.Unlock()
		if sz > maxConfig {
			return syscall.EFBIG
		}
		return f.Getattr(ctx, fh, out)
	}
	if sz > maxConfig {
		return syscall.EFBIG
	}
	name := f.c.Name()
	if err := f.writable(name); err != nil {
		return errno(err)
	}
	data, err := f.read(name)
	if err != nil {
		return errno(err)
	}
	if err := f.write(name, resize(data, int(sz))); err != nil {
		return errno(err)
	}
	return f.Getattr(ctx, nil, out)
}

// resize cuts data to n bytes or pads it with zeros, as truncate(2) does.
func resize(data []byte, n int) []byte {
	if n <= len(data) {
		return data[:n]
	}
	return append(data, make([]byte, n-len(data))...)
}

// Open starts from the current config, or from nothing with O_TRUNC.
func (f *configFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	name := f.c.Name()
	h := &configHandle{f: f}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		if err := f.writable(name); err != nil {
			return nil, 0, errno(err)
		}
		h.writable = true
	}
	if h.writable && flags&syscall.O_TRUNC != 0 {
		h.truncated = true
		return h, fuse.FOPEN_DIRECT_IO, 0
	}
	if flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EPERM
	}
	data, err := f.read(name)
	if err != nil {
		return nil, 0, errno(err)
	}
	h.data = data
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// configHandle collects what is written and replaces the config at close.
// A shell's `>` closes the descriptor it opened once before the command
// writes (after dup2 to stdout), so a truncation at open is not applied at
// that flush: only once something was written, or at release if nothing
// ever was (`: > config`).
type configHandle struct {
	bytesHandle
	f         *configFile
	writable  bool
	truncated bool // opened with O_TRUNC
	dirty     bool // written or ftruncate'd since the last flush
	applied   bool // a flush replaced (or tried to replace) the config
	tooBig    bool // a write or ftruncate went past maxConfig: never applied
}

var (
	_ gofs.FileWriter   = (*configHandle)(nil)
	_ gofs.FileFlusher  = (*configHandle)(nil)
	_ gofs.FileReleaser = (*configHandle)(nil)
)

// Write collects the bytes; a write that would take the config past
// maxConfig is EFBIG, and then nothing of this descriptor is applied.
func (h *configHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off < 0 || off > maxConfig || off+int64(len(data)) > maxConfig {
		h.tooBig = true
		return 0, syscall.EFBIG
	}
	if end := int(off) + len(data); end > len(h.data) {
		h.data = resize(h.data, end)
	}
	copy(h.data[off:], data)
	h.dirty = true
	return uint32(len(data)), 0
}

func (h *configHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tooBig {
		return syscall.EFBIG
	}
	if !h.writable || !h.dirty {
		return 0
	}
	return h.apply()
}

// Release applies a truncation at open that nothing was written after; its
// error can only go to `error`: close has returned.
func (h *configHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.writable && !h.tooBig && (h.dirty || h.truncated && !h.applied) {
		return h.apply()
	}
	return 0
}

// apply replaces the config with what the handle holds. Called with mu held.
func (h *configHandle) apply() syscall.Errno {
	h.dirty, h.applied = false, true
	return errno(h.f.write(h.f.c.Name(), append([]byte(nil), h.data...)))
}
