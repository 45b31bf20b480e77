package fs

import (
	"time"

	"ctrfs/ops"
)

// Manager is what the tree needs of ops.Manager, which implements it: this
// host's containers, their files and snapshots, and the templates. It is
// an interface, defined here where it is used, so that fs's tests can
// mount the tree over a fake (mount_test.go) without LXC or CRIU. Commands
// written to ctl do not come here: they go to Cluster's router; a
// container's files go to Files.
type Manager interface {
	Host() string
	Events() *ops.EventBus

	// This host's containers.
	List() ([]string, error)
	Exists(name string) bool
	Create(name string) error // mkdir containers/NAME
	Destroy(name string) error
	Rename(oldName, newName string) error
	// CheckIdle fails while an operation on the container is under way.
	CheckIdle(name string) error
	// RecordFailure records a refusal of the tree's own (a rename it
	// refuses) as the container's failed operation.
	RecordFailure(name, what string, err error)

	// A container's files.
	Status(name string) (string, error)
	Info(name string) ([]ops.KeyValue, error)
	LastError(name string) string
	Log(name string) []byte
	HasState(name string) bool
	SavedState(name string) (*ops.ImageSet, error)

	// Snapshots.
	Snapshots(name string) ([]string, error)
	Snapshot(name, snap string) (*ops.Snapshot, error)
	SnapshotState(name, snap string) (*ops.ImageSet, error)
	TakeSnapshot(name, snap string, stateful bool) error // mkdir snapshots/SNAP
	DeleteSnapshot(name, snap string) error

	TemplateInfo(name string) ([]ops.KeyValue, error)
}

// Files is what the tree needs of ops.Files (ops.Manager.Files): a
// container's config and `criu` files, and the times of its files.
type Files interface {
	Changed(name string) (time.Time, bool)
	Times(name string) ops.Times
	Config(name string) ([]byte, error)
	ConfigAttr(name string) (ops.FileAttr, error)
	CheckConfigWritable(name string) error
	SetConfig(name string, data []byte) error
	CriuOptions(name string) ([]byte, error)
	CriuOptionsAttr(name string) (ops.FileAttr, error)
	SetCriuOptions(name string, data []byte) error
}

var (
	_ Manager = (*ops.Manager)(nil)
	_ Files   = (*ops.Files)(nil)
)
