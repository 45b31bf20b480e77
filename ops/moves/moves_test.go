package moves

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ctrfs/images"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/opctx"
	"ctrfs/ops/staging"
	"ctrfs/ops/stored"
)

// noManager stands for ops.Manager where a test needs no lock or record
// to be kept: every name is free and new.
type noManager struct{}

func (noManager) Run(ctx context.Context, name, what string, fn func(context.Context, *opctx.Op) error) error {
	return fn(ctx, &opctx.Op{})
}
func (noManager) Lock(name, what string) (func(), error)                 { return func() {}, nil }
func (noManager) Record(string, string, *opctx.Op, time.Duration, error) {}
func (noManager) PortableSnapshot(context.Context, string, string) (*images.Manifest, error) {
	return nil, nil
}
func (noManager) PublishEvent(string, string, string, time.Duration) {}
func (noManager) Start(context.Context, *opctx.Op, string) error     { return nil }
func (noManager) Unfreeze(string) error                              { return nil }
func (noManager) ValidateNewName(name string) error                  { return lxcpath.ValidateName(name) }
func (noManager) SetAsideLeftovers(string) error                     { return nil }

// testMoves is the Moves of a fresh store and LXC path.
func testMoves(t *testing.T) *Moves {
	base := t.TempDir()
	storeDir, lxcPath := filepath.Join(base, "store"), filepath.Join(base, "lxc")
	for _, d := range []string{storeDir, lxcPath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	img, err := images.Open(filepath.Join(storeDir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	area := staging.New(storeDir, log)
	t.Cleanup(area.Close)
	st := stored.New(img, context.Background(), log)
	containers := lxcpath.New(lxcPath, "", filepath.Join(storeDir, "logs"), filepath.Join(storeDir, "tmp"))
	return New(noManager{}, Config{ScratchDir: filepath.Join(storeDir, "tmp")}, containers, st, nil, area, context.Background(), log)
}
