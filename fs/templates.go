package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"ctrfs/ops"
	"ctrfs/ops/templates"
)

// templatesDir is templates/: one directory per template that `create
// NAME --template T` takes, each with its info.
type templatesDir struct {
	gofs.Inode
	staticDir
	m Manager
}

// templateDir is templates/NAME: as fixed as templates/ itself.
type templateDir struct {
	gofs.Inode
	staticDir
}

var _ gofs.NodeOnAdder = (*templatesDir)(nil)

// OnAdd adds every template: the set is fixed in the binary.
func (d *templatesDir) OnAdd(ctx context.Context) {
	for _, name := range templates.Names() {
		dir := d.NewPersistentInode(ctx, &templateDir{staticDir: d.staticDir}, gofs.StableAttr{Mode: syscall.S_IFDIR})
		d.AddChild(name, dir, false)
		info := newGenFile(func() ([]byte, error) {
			kv, err := d.m.TemplateInfo(name)
			if err != nil {
				return nil, err
			}
			return ops.FormatInfo(kv), nil
		}).changed(func() time.Time { return d.mounted })
		dir.AddChild("info", d.NewPersistentInode(ctx, info, gofs.StableAttr{Mode: syscall.S_IFREG}), false)
	}
}
