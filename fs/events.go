package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// eventsFile streams events: every open sees the events from its open on,
// and a read blocks until there is one. go-fuse answers poll with ENOSYS, so
// blocking direct-I/O reads are how the stream is delivered.
type eventsFile struct {
	gofs.Inode
	bus *ops.EventBus
}

var (
	_ gofs.NodeOpener    = (*eventsFile)(nil)
	_ gofs.NodeGetattrer = (*eventsFile)(nil)
	_ gofs.NodeSetattrer = (*eventsFile)(nil)
)

// Getattr: events are happening now.
func (f *eventsFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | modePublic
	setTimes(out, time.Now())
	return 0
}

func (f *eventsFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return refuseSetattr(ctx, f, fh, in, out)
}

func (f *eventsFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if e := readOnlyOpen(flags); e != 0 {
		return nil, 0, e
	}
	return &eventsHandle{sub: f.bus.Subscribe()}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NONSEEKABLE, 0
}

type eventsHandle struct {
	sub     *ops.Subscription
	pending []byte // the rest of a line that did not fit the last read
}

var (
	_ gofs.FileReader   = (*eventsHandle)(nil)
	_ gofs.FileReleaser = (*eventsHandle)(nil)
)

func (h *eventsHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if len(h.pending) == 0 {
		ev, ok := h.sub.Next(ctx)
		if !ok {
			if ctx.Err() != nil {
				return nil, syscall.EINTR
			}
			return fuse.ReadResultData(nil), 0 // the daemon is shutting down
		}
		h.pending = []byte(ev.String())
	}
	n := copy(dest, h.pending)
	h.pending = h.pending[n:]
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *eventsHandle) Release(ctx context.Context) syscall.Errno {
	h.sub.Close()
	return 0
}
