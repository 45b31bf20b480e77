package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// hostCtlFile is the mount's top-level `ctl`: one host-level command per
// write (create NAME [--template T]), returning when it has finished.
// Reading it lists the commands.
type hostCtlFile struct {
	gofs.Inode
	m *ops.Manager
}

var (
	_ gofs.NodeOpener    = (*hostCtlFile)(nil)
	_ gofs.NodeGetattrer = (*hostCtlFile)(nil)
	_ gofs.NodeSetattrer = (*hostCtlFile)(nil)
)

func (f *hostCtlFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	out.Size = uint64(len(ops.HostCtlHelp))
	return 0
}

// Setattr accepts the truncation that `>` asks for.
func (f *hostCtlFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.Getattr(ctx, fh, out)
}

// Open: commands on different containers run in parallel, so writes do too.
func (f *hostCtlFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	h := &hostCtlHandle{f: f, bytesHandle: bytesHandle{data: []byte(ops.HostCtlHelp)}}
	return h, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES, 0
}

type hostCtlHandle struct {
	bytesHandle
	f *hostCtlFile
}

var _ gofs.FileWriter = (*hostCtlHandle)(nil)

func (h *hostCtlHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	cmd, err := ops.ParseHostCommand(string(data))
	if err == nil {
		err = h.f.m.RunHost(cmd)
	}
	if err != nil {
		return 0, errno(err)
	}
	return uint32(len(data)), 0
}
