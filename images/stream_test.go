package images

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	streamer "github.com/checkpoint-restore/go-criu/v7/crit/images/img-streamer"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"ctrfs/images/chunking"
)

// fakeCRIU speaks CRIU's side of the image streamer protocol.
type fakeCRIU struct {
	t    *testing.T
	conn *net.UnixConn
}

func dialServer(t *testing.T, dir string) *fakeCRIU {
	t.Helper()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: filepath.Join(dir, StreamSocket), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeCRIU{t: t, conn: conn}
}

// open asks for an image as CRIU does: the read end of a pipe whose
// write end the server got, or nil if the server has no such image.
func (c *fakeCRIU) open(name string) *os.File {
	c.t.Helper()
	if err := writeMessage(c.conn, &streamer.ImgStreamerRequestEntry{Filename: proto.String(name)}); err != nil {
		c.t.Fatal(err)
	}
	var reply streamer.ImgStreamerReplyEntry
	if err := readMessage(c.conn, &reply); err != nil {
		c.t.Fatal(err)
	}
	if !reply.GetExists() {
		return nil
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		c.t.Fatal(err)
	}
	if _, _, err := c.conn.WriteMsgUnix([]byte{0}, unix.UnixRights(p[1]), nil); err != nil {
		c.t.Fatal(err)
	}
	unix.Close(p[1])
	return os.NewFile(uintptr(p[0]), name)
}

// serveFiles stores files and serves them as a restore's images, with a
// fake CRIU connected.
func serveFiles(t *testing.T, files map[string][]byte) (*Store, *Manifest, *ImageServer, *fakeCRIU) {
	t.Helper()
	s := newStore(t)
	src := t.TempDir()
	for name, data := range files {
		writeFile(t, filepath.Join(src, name), data, 0o600)
	}
	m, _, err := s.ImportDir(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Release(m) })
	dir := t.TempDir()
	srv, err := s.ServeImages(m, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, m, srv, dialServer(t, dir)
}

func TestServeImagesAsCRIUReadsThem(t *testing.T) {
	pages := randBytes(11, 9<<20+3*chunking.PageSize) // several page chunks
	_, _, srv, criu := serveFiles(t, map[string][]byte{
		"pages-1.img": pages, "pagemap-1.img": randBytes(12, 300<<10)})
	dir := filepath.Dir(srv.ln.Addr().String())
	// CRIU holds a pagemap open while it reads its pages image: both
	// must flow at once, with neither read to its end first.
	pagemap := criu.open("pagemap-1.img")
	head := make([]byte, 100)
	if _, err := io.ReadFull(pagemap, head); err != nil {
		t.Fatal(err)
	}
	pagesPipe := criu.open("pages-1.img")
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(pagesPipe, first); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(pagemap)
	if err != nil {
		t.Fatal(err)
	}
	if len(head)+len(rest) != 300<<10 {
		t.Fatalf("pagemap-1.img: %d bytes, want %d", len(head)+len(rest), 300<<10)
	}
	more, err := io.ReadAll(pagesPipe)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "pages-1.img", append(first, more...), pages)
	if f := criu.open("fdinfo-9.img"); f != nil {
		t.Fatal("the server offered an image it does not have")
	}
	// CRIU stops reading an image once it has what it needs: the
	// server's writes fail, which is no error of the restore.
	again := criu.open("pages-1.img")
	if _, err := io.ReadFull(again, first[:64<<10]); err != nil {
		t.Fatal(err)
	}
	again.Close()
	pagemap.Close()
	pagesPipe.Close()
	criu.conn.Close()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, StreamSocket)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket outlived Close: %v", err)
	}
}

// A damaged chunk: CRIU gets none of its bytes (the pipe ends before
// it), and Close names the file.
func TestServeImagesDamagedChunk(t *testing.T) {
	pages := randBytes(13, 9<<20)
	s, m, srv, criu := serveFiles(t, map[string][]byte{"pages-1.img": pages})
	f, _ := m.File("pages-1.img")
	victim := len(f.Chunks) / 2
	var offset int64
	for _, c := range f.Chunks[:victim] {
		offset += c.Size
	}
	path := s.chunks.chunkPath(f.Chunks[victim].Hash)
	comp, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	comp[len(comp)/2] ^= 0xff
	writeFile(t, path, comp, 0o644)

	got, _ := io.ReadAll(criu.open("pages-1.img"))
	criu.conn.Close()
	if int64(len(got)) > offset {
		t.Fatalf("CRIU got %d bytes, past the damaged chunk at %d", len(got), offset)
	}
	sameBytes(t, "what came before the damage", got, pages[:len(got)])
	err = srv.Close()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "pages-1.img") {
		t.Fatalf("Close: %v, want a damaged chunk of pages-1.img", err)
	}
}

// A reader that neither reads nor goes away (a process CRIU left behind
// holding the pipe) does not keep Close waiting.
func TestServeImagesCloseEndsStuckWrites(t *testing.T) {
	_, _, srv, criu := serveFiles(t, map[string][]byte{"pages-1.img": randBytes(14, 9<<20)})
	srv.grace = 100 * time.Millisecond
	stuck := criu.open("pages-1.img")
	defer stuck.Close()
	if _, err := stuck.Read(make([]byte, 1)); err != nil { // the server writes
		t.Fatal(err)
	}
	criu.conn.Close()
	closed := make(chan error)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for a reader that does not read")
	}
}

// A memory image is lent to CRIU's pipe (lend.go): the buffers the pipe
// refers to must not be reused before CRIU has read them, however slowly
// it reads. A reader that falls behind, in small reads, gets every byte.
func TestServeImagesLentPagesIntact(t *testing.T) {
	pages := randBytes(21, 24<<20+5*chunking.PageSize)
	_, _, srv, criu := serveFiles(t, map[string][]byte{"pages-1.img": pages, "core-1.img": randBytes(22, 3<<20)})
	pipe := criu.open("pages-1.img")
	core := criu.open("core-1.img")
	var got []byte
	buf := make([]byte, 37<<10) // not a whole number of pages
	for {
		n, err := pipe.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got)%(2<<20) < len(buf) {
			time.Sleep(20 * time.Millisecond) // let the server run ahead
		}
	}
	sameBytes(t, "pages-1.img", got, pages)
	coreBytes, err := io.ReadAll(core)
	if err != nil {
		t.Fatal(err)
	}
	if len(coreBytes) != 3<<20 {
		t.Fatalf("core-1.img: %d bytes", len(coreBytes))
	}
	pipe.Close()
	core.Close()
	criu.conn.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// All but the tail (the pipe's size) went by reference; nothing else
	// did.
	if lent := srv.lent.Load(); lent < int64(len(pages))-4<<20 || lent > int64(len(pages)) {
		t.Fatalf("%d bytes lent of %d", lent, len(pages))
	}
}
