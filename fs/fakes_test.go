package fs

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"ctrfs/cluster"
	"ctrfs/ops"
)

// fakeManager is a Manager of containers in memory: enough of ops for the
// tree to show them, with errors the test sets, and no LXC or CRIU.
type fakeManager struct {
	events *ops.EventBus

	mu         sync.Mutex
	containers map[string]*fakeContainer
	createErr  error // what Create fails with, if not nil
}

type fakeContainer struct {
	status   string
	lastErr  string
	idle     error // what CheckIdle says: an operation under way
	hasState bool
	config   []byte
}

// fakeTime is every time the fake reports, so that stat shows something
// other than the mount's time.
var fakeTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newFakeManager(names ...string) *fakeManager {
	m := &fakeManager{events: ops.NewEventBus(), containers: map[string]*fakeContainer{}}
	for _, n := range names {
		m.containers[n] = &fakeContainer{status: "STOPPED", config: []byte("lxc.uts.name = " + n + "\n")}
	}
	return m
}

// set changes a container's fields under the lock.
func (m *fakeManager) set(name string, change func(*fakeContainer)) error {
	_, err := field(m, name, func(c *fakeContainer) struct{} { change(c); return struct{}{} })
	return err
}

// field is what f reads of the container under the lock, or ErrNotFound
// as ops words it.
func field[T any](m *fakeManager, name string, f func(*fakeContainer) T) (T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.containers[name]
	if !ok {
		var zero T
		return zero, ops.NewError(ops.ErrNotFound, fmt.Sprintf("no container %q", name))
	}
	return f(c), nil
}

func (m *fakeManager) Host() string          { return "here" }
func (m *fakeManager) Events() *ops.EventBus { return m.events }

func (m *fakeManager) List() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.containers))
	for n := range m.containers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (m *fakeManager) Exists(name string) bool {
	_, err := field(m, name, func(*fakeContainer) bool { return true })
	return err == nil
}

func (m *fakeManager) Create(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.createErr != nil {
		return m.createErr
	}
	if _, ok := m.containers[name]; ok {
		return ops.NewError(ops.ErrExists, fmt.Sprintf("container %q exists", name))
	}
	m.containers[name] = &fakeContainer{status: "STOPPED"}
	return nil
}

func (m *fakeManager) Destroy(name string) error {
	return m.set(name, func(*fakeContainer) { delete(m.containers, name) })
}

func (m *fakeManager) Rename(oldName, newName string) error {
	return ops.NewError(ops.ErrUnsupported, "the fake renames nothing")
}

func (m *fakeManager) CheckIdle(name string) error {
	idle, err := field(m, name, func(c *fakeContainer) error { return c.idle })
	if err != nil {
		return err
	}
	return idle
}

func (m *fakeManager) RecordFailure(name, what string, err error) {
	m.set(name, func(c *fakeContainer) { c.lastErr = err.Error() })
}

func (m *fakeManager) Status(name string) (string, error) {
	return field(m, name, func(c *fakeContainer) string { return c.status })
}

func (m *fakeManager) Info(name string) ([]ops.KeyValue, error) {
	st, err := m.Status(name)
	return []ops.KeyValue{{Key: "name", Value: name}, {Key: "status", Value: st}}, err
}

func (m *fakeManager) LastError(name string) string {
	e, _ := field(m, name, func(c *fakeContainer) string { return c.lastErr })
	return e
}

func (m *fakeManager) Log(name string) []byte { return nil }

func (m *fakeManager) Changed(name string) (time.Time, bool) { return fakeTime, m.Exists(name) }

func (m *fakeManager) Times(name string) ops.Times {
	return ops.Times{Created: fakeTime, Changed: fakeTime, Config: fakeTime, Criu: fakeTime, Error: fakeTime, Log: fakeTime}
}

func (m *fakeManager) Config(name string) ([]byte, error) {
	return field(m, name, func(c *fakeContainer) []byte { return slices.Clone(c.config) })
}

func (m *fakeManager) ConfigAttr(name string) (ops.FileAttr, error) {
	data, err := m.Config(name)
	return ops.FileAttr{Size: int64(len(data)), Mtime: fakeTime}, err
}

func (m *fakeManager) CheckConfigWritable(name string) error {
	st, err := m.Status(name)
	if err == nil && st != "STOPPED" {
		err = ops.NewError(ops.ErrBusy, name+" is "+st)
	}
	return err
}

func (m *fakeManager) SetConfig(name string, data []byte) error {
	return m.set(name, func(c *fakeContainer) { c.config = data })
}

func (m *fakeManager) CriuOptions(name string) ([]byte, error)           { return nil, nil }
func (m *fakeManager) CriuOptionsAttr(name string) (ops.FileAttr, error) { return ops.FileAttr{}, nil }
func (m *fakeManager) SetCriuOptions(name string, data []byte) error     { return nil }

func (m *fakeManager) HasState(name string) bool {
	has, _ := field(m, name, func(c *fakeContainer) bool { return c.hasState })
	return has
}

func (m *fakeManager) SavedState(name string) (*ops.ImageSet, error) {
	return nil, ops.NewError(ops.ErrNotFound, "the fake keeps no images")
}

func (m *fakeManager) Snapshots(name string) ([]string, error) { return nil, nil }

func (m *fakeManager) Snapshot(name, snap string) (*ops.Snapshot, error) {
	return nil, ops.NewError(ops.ErrNotFound, "no snapshot "+snap)
}

func (m *fakeManager) SnapshotState(name, snap string) (*ops.ImageSet, error) {
	return nil, ops.NewError(ops.ErrNotFound, "no snapshot "+snap)
}

func (m *fakeManager) TakeSnapshot(name, snap string, stateful bool) error {
	return ops.NewError(ops.ErrUnsupported, "the fake takes no snapshots")
}

func (m *fakeManager) DeleteSnapshot(name, snap string) error {
	return ops.NewError(ops.ErrNotFound, "no snapshot "+snap)
}

func (m *fakeManager) TemplateInfo(name string) ([]ops.KeyValue, error) {
	return []ops.KeyValue{{Key: "name", Value: name}}, nil
}

// fakeCluster is a Cluster without peers whose router records the lines
// it is given and answers each with err.
type fakeCluster struct {
	mu    sync.Mutex
	lines []string // "NAME: LINE" for a container's ctl, ": LINE" for the top-level one
	err   error
}

func (c *fakeCluster) Dispatch(container, line string) error {
	return c.dispatched(container + ": " + line)
}
func (c *fakeCluster) DispatchHost(line string) error { return c.dispatched(": " + line) }

func (c *fakeCluster) dispatched(record string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, record)
	return c.err
}

// got is what was dispatched so far.
func (c *fakeCluster) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

// failWith makes every dispatch fail with err (nil: succeed).
func (c *fakeCluster) failWith(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *fakeCluster) Peers() []cluster.Peer                 { return nil }
func (c *fakeCluster) Peer(name string) (cluster.Peer, bool) { return cluster.Peer{}, false }
func (c *fakeCluster) PeerInfo(name string) ([]ops.KeyValue, error) {
	return nil, ops.NewError(ops.ErrNotFound, "no host "+name)
}
func (c *fakeCluster) PeerContainers(host string) ([]cluster.ContainerSummary, error) {
	return nil, ops.NewError(ops.ErrNotFound, "no host "+host)
}
func (c *fakeCluster) Migrate(name, host string) error {
	return ops.NewError(ops.ErrNotFound, "no host "+host)
}
func (c *fakeCluster) Pull(name, from string) error {
	return ops.NewError(ops.ErrNotFound, "no host "+from)
}
func (c *fakeCluster) BugReport(name string) ([]byte, error) {
	return []byte("report of " + name + "\n"), nil
}

var (
	_ Manager = (*fakeManager)(nil)
	_ Cluster = (*fakeCluster)(nil)
)
