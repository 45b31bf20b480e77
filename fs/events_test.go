package fs

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"ctrfs/ops"
)

var testEvent = ops.Event{
	Time: time.Date(2026, 11, 25, 2, 10, 0, 0, time.UTC), Host: "dakara", Container: "c1",
	What: "stop-stateful", Result: "ok", Seconds: 0.48,
}

const testLine = "2026-11-25T02:10:00Z dakara c1 stop-stateful ok 0.48\n"

func readHandle(t *testing.T, h *eventsHandle, ctx context.Context, size int) (string, syscall.Errno) {
	t.Helper()
	dest := make([]byte, size)
	res, errno := h.Read(ctx, dest, 0)
	if errno != 0 {
		return "", errno
	}
	data, status := res.Bytes(make([]byte, size))
	if status != fuse.OK {
		t.Fatalf("ReadResult.Bytes: %v", status)
	}
	return string(data), 0
}

func withTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEventsHandleReadsLines(t *testing.T) {
	bus := ops.NewEventBus()
	defer bus.Close()
	h := &eventsHandle{sub: bus.Subscribe()}
	defer h.Release(context.Background())
	bus.Publish(testEvent)
	second := testEvent
	second.Container, second.What, second.Seconds = "c2", "start", 1.5
	bus.Publish(second)

	if got, e := readHandle(t, h, withTimeout(t), 4096); e != 0 || got != testLine {
		t.Fatalf("first read = %q, %v; want %q", got, e, testLine)
	}
	// One line per read, even when there is room for more.
	want2 := "2026-11-25T02:10:00Z dakara c2 start ok 1.50\n"
	if got, e := readHandle(t, h, withTimeout(t), 4096); e != 0 || got != want2 {
		t.Fatalf("second read = %q, %v; want %q", got, e, want2)
	}
}

// A read smaller than a line gets the line in pieces, in order.
func TestEventsHandleShortReads(t *testing.T) {
	bus := ops.NewEventBus()
	defer bus.Close()
	h := &eventsHandle{sub: bus.Subscribe()}
	defer h.Release(context.Background())
	bus.Publish(testEvent)
	bus.Publish(testEvent)

	var got string
	for len(got) < 2*len(testLine) {
		piece, e := readHandle(t, h, withTimeout(t), 7)
		if e != 0 {
			t.Fatalf("read after %q: %v", got, e)
		}
		if len(piece) == 0 || len(piece) > 7 {
			t.Fatalf("read returned %d bytes", len(piece))
		}
		got += piece
	}
	if got != testLine+testLine {
		t.Errorf("pieces make %q, want two copies of %q", got, testLine)
	}
}

func TestEventsHandleInterruptedRead(t *testing.T) {
	bus := ops.NewEventBus()
	defer bus.Close()
	h := &eventsHandle{sub: bus.Subscribe()}
	defer h.Release(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if got, e := readHandle(t, h, ctx, 4096); e != syscall.EINTR {
		t.Errorf("read with nothing published and the request interrupted = %q, %v; want EINTR", got, e)
	}
}

// When the daemon shuts down, a blocked reader sees end of file.
func TestEventsHandleEOFOnShutdown(t *testing.T) {
	bus := ops.NewEventBus()
	h := &eventsHandle{sub: bus.Subscribe()}
	defer h.Release(context.Background())
	type result struct {
		data  string
		errno syscall.Errno
	}
	res := make(chan result, 1)
	go func() {
		d, e := readHandle(t, h, context.Background(), 4096)
		res <- result{d, e}
	}()
	time.Sleep(10 * time.Millisecond)
	bus.Close()
	select {
	case r := <-res:
		if r.errno != 0 || r.data != "" {
			t.Errorf("read after shutdown = %q, %v; want end of file", r.data, r.errno)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end a blocked read")
	}
}

func TestEventsHandleRelease(t *testing.T) {
	bus := ops.NewEventBus()
	defer bus.Close()
	h := &eventsHandle{sub: bus.Subscribe()}
	if e := h.Release(context.Background()); e != 0 {
		t.Fatalf("Release = %v", e)
	}
	bus.Publish(testEvent) // must not reach (or panic on) the released handle
	if got, e := readHandle(t, h, withTimeout(t), 4096); e != 0 || got != "" {
		t.Errorf("read after Release = %q, %v; want end of file", got, e)
	}
}

func TestEventsFileOpen(t *testing.T) {
	bus := ops.NewEventBus()
	defer bus.Close()
	f := &eventsFile{bus: bus}
	for _, flags := range []uint32{syscall.O_WRONLY, syscall.O_RDWR} {
		if _, _, e := f.Open(context.Background(), flags); e != syscall.EACCES {
			t.Errorf("Open(%#o) = %v, want EACCES", flags, e)
		}
	}
	bus.Publish(testEvent) // before the open: not seen
	fh, fuseFlags, e := f.Open(context.Background(), syscall.O_RDONLY)
	if e != 0 {
		t.Fatalf("Open(O_RDONLY) = %v", e)
	}
	if fuseFlags&fuse.FOPEN_DIRECT_IO == 0 {
		t.Error("events is not opened with direct I/O; the page cache would serve stale or no data")
	}
	h := fh.(*eventsHandle)
	defer h.Release(context.Background())
	later := testEvent
	later.What = "start"
	bus.Publish(later)
	want := "2026-11-25T02:10:00Z dakara c1 start ok 0.48\n"
	if got, e := readHandle(t, h, withTimeout(t), 4096); e != 0 || got != want {
		t.Errorf("first read = %q, %v; want %q (events from the open on)", got, e, want)
	}
}
