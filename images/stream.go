package images

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	streamer "github.com/checkpoint-restore/go-criu/v7/crit/images/img-streamer"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Why serve images to CRIU instead of unpacking them: a restore cannot
// start until every image is on disk, and unpacking a checkpoint of a few
// hundred megabytes took a third of the time CRIU then needed to restore
// it. With `criu restore --stream`, CRIU asks for each image by name over
// a UNIX socket in the images directory and reads it from a pipe, in
// order: the chunks are checked and decompressed while CRIU restores, a
// few ahead of where it reads.
//
// The protocol (CRIU's criu/img-streamer.c): CRIU connects to
// IMAGES/streamer-serve.sock and, for every image it opens, sends an
// img_streamer_request_entry with the name; the server answers with an
// img_streamer_reply_entry saying whether it exists, and if it does CRIU
// sends the write end of a pipe (SCM_RIGHTS, one data byte) and reads the
// image from the other end. Messages are a 4-byte length in host order,
// then the protobuf. CRIU closes the connection when it needs no more.
// It writes only its log and stats-restore into the directory itself.

// StreamSocket is the name of the socket CRIU's restore connects to.
const StreamSocket = "streamer-serve.sock"

// ImageServer serves the files of a manifest to one CRIU restore.
type ImageServer struct {
	s  *Store
	m  *Manifest
	ln *net.UnixListener

	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error // the first damaged chunk: CRIU got none of its bytes
	conns   []*net.UnixConn
	pipes   []*os.File
	closing bool
	grace   time.Duration // see closeGrace
	served  atomic.Int64  // bytes written to CRIU so far
	lent    atomic.Int64  // of which lent by reference (lend.go)
}

// Served is how many bytes of the images CRIU has been given so far.
func (srv *ImageServer) Served() int64 { return srv.served.Load() }

// closeGrace is how long Close waits for images under way before it
// closes their pipes: once CRIU has exited they fail at once, but a pipe
// whose reader lives on (a process CRIU left) must not hang the daemon.
const closeGrace = 5 * time.Second

// ServeImages listens in dir for a CRIU restore with --stream and serves
// it m's files until Close.
func (s *Store) ServeImages(m *Manifest, dir string) (*ImageServer, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, StreamSocket)
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("images: listen for CRIU: %w", err)
	}
	srv := &ImageServer{s: s, m: m, ln: ln, grace: closeGrace}
	srv.wg.Add(1)
	go srv.accept()
	return srv, nil
}

// Close stops serving, waits for every image under way, and returns the
// first damaged chunk met (wrapping ErrCorrupt, and naming the file), if
// any. A pipe that CRIU closed early is not an error here: CRIU's own
// result says whether the restore worked.
func (srv *ImageServer) Close() error {
	srv.mu.Lock()
	srv.closing = true
	for _, c := range srv.conns {
		c.Close()
	}
	srv.mu.Unlock()
	srv.ln.Close()
	done := make(chan struct{})
	go func() {
		srv.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(srv.grace):
		srv.mu.Lock()
		for _, p := range srv.pipes {
			p.Close()
		}
		srv.mu.Unlock()
		<-done
	}
	return srv.err
}

func (srv *ImageServer) accept() {
	defer srv.wg.Done()
	for {
		conn, err := srv.ln.AcceptUnix()
		if err != nil {
			return
		}
		srv.mu.Lock()
		if srv.closing {
			srv.mu.Unlock()
			conn.Close()
			return
		}
		srv.conns = append(srv.conns, conn)
		srv.mu.Unlock()
		srv.wg.Add(1)
		go srv.serve(conn)
	}
}

// serve answers one CRIU's requests. Each image goes out on its own
// goroutine: CRIU holds several open at once (it asks for pages-N.img
// before it has read pagemap-N.img to the end), so one at a time could
// deadlock on a full pipe.
func (srv *ImageServer) serve(conn *net.UnixConn) {
	defer srv.wg.Done()
	defer conn.Close()
	for {
		var req streamer.ImgStreamerRequestEntry
		if err := readMessage(conn, &req); err != nil {
			return // CRIU is done, or gone
		}
		f, ok := srv.m.File(req.GetFilename())
		if err := writeMessage(conn, &streamer.ImgStreamerReplyEntry{Exists: proto.Bool(ok)}); err != nil || !ok {
			if err != nil {
				return
			}
			continue
		}
		pipe, err := receiveFile(conn, f.Name)
		if err != nil {
			return
		}
		srv.mu.Lock()
		srv.pipes = append(srv.pipes, pipe)
		srv.mu.Unlock()
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer pipe.Close()
			defer boostThread()() // the writer, which CRIU waits for
			if err := srv.s.chunks.writeInOrder(newImagePipe(pipe, f.Name, &srv.served, &srv.lent), f); err != nil && errors.Is(err, ErrCorrupt) {
				srv.mu.Lock()
				if srv.err == nil {
					srv.err = err
				}
				srv.mu.Unlock()
			}
		}()
	}
}

// readMessage reads one length-prefixed protobuf message.
func readMessage(r io.Reader, m proto.Message) error {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return err
	}
	n := binary.NativeEndian.Uint32(size[:])
	if n > 64<<10 {
		return fmt.Errorf("images: streamer request of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	return proto.Unmarshal(buf, m)
}

func writeMessage(w io.Writer, m proto.Message) error {
	body, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	msg := binary.NativeEndian.AppendUint32(nil, uint32(len(body)))
	_, err = w.Write(append(msg, body...))
	return err
}

// receiveFile takes the pipe CRIU sends for an image, non-blocking so
// that Close can end a write under way.
func receiveFile(conn *net.UnixConn, name string) (*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(make([]byte, 1), oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("images: no pipe from CRIU for %s", name)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("images: no pipe from CRIU for %s", name)
	}
	// A larger pipe: fewer wake-ups on both sides. Best effort.
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, 1<<20)
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), name), nil
}

// writeInOrder writes f's content to w from start to end: workers check
// and decompress the chunks a few ahead, as writeChunks does for an
// export, and this goroutine writes them in order, or lends them to the
// pipe when w is CRIU's for a memory image (lend.go).
func (s *chunkStore) writeInOrder(w io.Writer, f File) error {
	lent := newLentBuffers(w, f.Size)
	workers := runtime.GOMAXPROCS(0)
	if lent.lending() && workers > 1 {
		// A memory image is read by CRIU as fast as it comes: leave it a
		// core (start's median 1.04-1.14x raw with one worker on two
		// cores, 1.05-1.22x with two, four runs each).
		workers--
	}
	type decoded struct {
		data []byte
		err  error
	}
	type job struct {
		c   Chunk
		out chan decoded
	}
	jobs := make(chan job)
	order := make(chan chan decoded, 2*workers) // how far ahead to decode
	free := make(chan []byte, 3*workers)        // decoded buffers to reuse
	quit := make(chan struct{})

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer boostThread()()
			var comp []byte
			for j := range jobs {
				var data []byte
				select {
				case data = <-free:
				default:
				}
				err := errAborted
				select {
				case <-quit:
				default:
					comp, data, err = s.readChunk(j.c, comp, data)
				}
				j.out <- decoded{data, err}
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for _, c := range f.Chunks {
			out := make(chan decoded, 1)
			select {
			case order <- out:
			case <-quit:
				return
			}
			jobs <- job{c, out}
		}
	}()

	var err error
	for out := range order {
		d := <-out
		reusable := [][]byte{d.data}
		if err == nil {
			err = d.err
			if err == nil {
				reusable, err = lent.put(d.data)
			}
			if err != nil {
				close(quit)
			}
		}
		for _, b := range reusable {
			select {
			case free <- b:
			default:
			}
		}
	}
	wg.Wait()
	return inFile(f.Name, err)
}
