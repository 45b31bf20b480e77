package fs

import (
	"context"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

// A stat of a container's info or bugreport must not make them: info asks
// LXC, the store and the cgroup, and ls -l asks every file's size. The
// container here has no manager, so making either would panic.
func TestCostlyFilesAreNotMadeForAStat(t *testing.T) {
	c := &containerDir{name: "c1"}
	for _, name := range []string{"info", "bugreport"} {
		f, ok := c.file(name).(*genFile)
		if !ok {
			t.Fatalf("%s is %T, not a generated file", name, c.file(name))
		}
		f.mtime = func() time.Time { return time.Unix(1, 0) }
		var out fuse.AttrOut
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("stat of %s made its content: %v", name, r)
				}
			}()
			if e := f.Getattr(context.Background(), nil, &out); e != 0 {
				t.Fatalf("stat of %s: %v", name, e)
			}
		}()
		if out.Size != 0 {
			t.Fatalf("%s: size %d; want 0 (made at open)", name, out.Size)
		}
	}
}

// A stat of config or criu stats the file; it does not read it.
func TestConfigStatDoesNotRead(t *testing.T) {
	f := &configFile{c: &containerDir{name: "c1"},
		read: func(string) ([]byte, error) { t.Fatal("a stat read the file"); return nil, nil },
		attr: func(string) (ops.FileAttr, error) { return ops.FileAttr{Size: 42, Mtime: time.Unix(7, 0)}, nil }}
	var out fuse.AttrOut
	if e := f.Getattr(context.Background(), nil, &out); e != 0 {
		t.Fatal(e)
	}
	if out.Size != 42 || out.Mtime != 7 {
		t.Fatalf("size %d, mtime %d; want 42 bytes at 7", out.Size, out.Mtime)
	}
}
