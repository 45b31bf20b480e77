package images

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"ctrfs/images/chunking"
)

// Why import while CRIU writes: the page images are nearly all of a
// checkpoint's bytes, and CRIU writes each from start to end while it dumps
// the processes' memory. Storing them only after CRIU exits made a stateful
// stop take twice as long as the dump; reading them as they grow lets the
// hashing and compression run beside CRIU, on another core, and leaves
// little to do once it exits.
//
// A page image is followed from the moment it appears (inotify) until its
// writer closes it; the chunk sizes are chosen as for the whole file (see
// chunking.ParamsFor), so a followed file is cut exactly as ImportDir would cut it.
// Anything else in the directory, and a page image changed after it was
// closed or whose size is not what was read, is imported the ordinary way
// once the writer has finished: following is only ever a head start.

// GrowingImport imports a directory that another process is writing.
// Start it before the writer, then call Finish once the writer succeeded,
// or Cancel.
type GrowingImport struct {
	dir string
	imp *importer
	fd  int // inotify, -1 when following is off

	mu         sync.Mutex
	created    []string        // page images, in the order they appeared
	closed     map[string]bool // their writer closed them
	rewritten  map[string]bool // written again after that
	overflow   bool            // inotify lost events: trust nothing followed
	writerDone bool            // Finish or Cancel was called
	cancelled  bool
	followed   map[string]followedFile

	stopWatch  chan struct{}
	watchDone  chan struct{}
	followDone chan struct{}
}

type followedFile struct {
	pf   pendingFile
	size int64
}

// StartGrowingImport begins importing dir, which must exist. If the
// directory cannot be watched it imports everything at Finish. ref, if not
// nil, is an earlier import of much the same files (see Reference).
func (s *Store) StartGrowingImport(dir string, ref *Reference) *GrowingImport {
	g := s.newGrowingImport(dir, ref)
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err == nil {
		if _, err = unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_CLOSE_WRITE|unix.IN_MODIFY); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		return g.unfollowed()
	}
	g.fd = fd
	go g.watch()
	go g.follow()
	return g
}

// StartDeferredImport is StartGrowingImport without the head start: it
// follows nothing and imports everything at Finish, once the writer is
// done. For a writer whose own speed matters more than the time it takes
// to store after it: CRIU dumping a container that keeps running, whose
// tasks stay frozen until CRIU exits. Hashing and compressing beside it on
// a small machine's cores lengthened that freeze by half (a stateful
// snapshot of a Debian container on 2 cores: CRIU's frozen time 0.50 s
// with the head start, 0.35 s without).
func (s *Store) StartDeferredImport(dir string, ref *Reference) *GrowingImport {
	return s.newGrowingImport(dir, ref).unfollowed()
}

func (s *Store) newGrowingImport(dir string, ref *Reference) *GrowingImport {
	imp := s.newImporter()
	imp.ref = ref
	return &GrowingImport{dir: dir, imp: imp, fd: -1,
		closed: map[string]bool{}, rewritten: map[string]bool{}, followed: map[string]followedFile{},
		stopWatch: make(chan struct{}), watchDone: make(chan struct{}), followDone: make(chan struct{})}
}

// unfollowed marks an import that follows nothing: Finish imports all.
func (g *GrowingImport) unfollowed() *GrowingImport {
	close(g.watchDone)
	close(g.followDone)
	return g
}

// watch records what inotify says about the page images until stopped,
// and drains what is queued once more after that: the writer has exited
// by then, so every event it caused is in the queue.
func (g *GrowingImport) watch() {
	defer close(g.watchDone)
	defer unix.Close(g.fd)
	buf := make([]byte, 64<<10)
	for {
		stopping := false
		select {
		case <-g.stopWatch:
			stopping = true
		default:
			unix.Poll([]unix.PollFd{{Fd: int32(g.fd), Events: unix.POLLIN}}, 10)
		}
		for {
			n, err := unix.Read(g.fd, buf)
			if err != nil || n <= 0 {
				break
			}
			g.record(buf[:n])
		}
		if stopping {
			return
		}
	}
}

// record takes in inotify events: struct inotify_event (wd, mask,
// cookie, len) and a NUL-padded name of len bytes.
func (g *GrowingImport) record(buf []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(buf) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(buf[4:8])
		end := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[12:16]))
		if end > len(buf) {
			return
		}
		name := string(bytes.TrimRight(buf[unix.SizeofInotifyEvent:end], "\x00"))
		buf = buf[end:]
		if mask&unix.IN_Q_OVERFLOW != 0 {
			g.overflow = true
		}
		if !chunking.IsPageImage(name) {
			continue
		}
		switch {
		case mask&unix.IN_CREATE != 0:
			g.created = append(g.created, name)
		case mask&unix.IN_CLOSE_WRITE != 0:
			g.closed[name] = true
		case mask&unix.IN_MODIFY != 0 && g.closed[name]:
			g.rewritten[name] = true
		}
	}
}

// follow imports the page images one after the other as they grow, until
// the writer is done (the one it is reading is read to its end).
func (g *GrowingImport) follow() {
	defer close(g.followDone)
	defer boostThread()()
	for i := 0; ; i++ {
		name, ok := g.next(i)
		if !ok {
			return
		}
		path := filepath.Join(g.dir, name)
		fd, err := os.Open(path)
		if err != nil {
			continue // gone again: Finish imports what is there
		}
		f, size, err := g.followFile(name, fd)
		fd.Close()
		if err != nil {
			continue
		}
		g.mu.Lock()
		g.followed[name] = followedFile{pf: f, size: size}
		g.mu.Unlock()
	}
}

// next waits for the i-th page image to appear; false once the writer is
// done (Finish imports the rest).
func (g *GrowingImport) next(i int) (string, bool) {
	for {
		g.mu.Lock()
		done, cancelled := g.writerDone, g.cancelled
		var name string
		if i < len(g.created) {
			name = g.created[i]
		}
		g.mu.Unlock()
		switch {
		case cancelled || done:
			return "", false
		case name != "":
			return name, true
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *GrowingImport) complete(name string) (done, cancelled bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed[name] || g.writerDone, g.cancelled
}

// followFile waits until the file's size decides its chunk sizes (it
// reached chunking.SmallFile, or it is complete), then imports it as it grows.
func (g *GrowingImport) followFile(name string, fd *os.File) (pendingFile, int64, error) {
	var info os.FileInfo
	for {
		var err error
		if info, err = fd.Stat(); err != nil {
			return pendingFile{}, 0, err
		}
		done, cancelled := g.complete(name)
		if cancelled {
			return pendingFile{}, 0, errAborted
		}
		if info.Size() >= chunking.SmallFile {
			break
		}
		if done {
			if info, err = fd.Stat(); err != nil {
				return pendingFile{}, 0, err
			}
			break
		}
		time.Sleep(time.Millisecond)
	}
	r := &followReader{g: g, name: name, f: fd}
	f, err := g.imp.read(name, info.Mode(), r, chunking.ParamsFor(name, info.Size()))
	return f, r.n, err
}

// followReader reads a file that is still being written: at its end it
// waits for more until the writer has closed it.
type followReader struct {
	g    *GrowingImport
	name string
	f    *os.File
	n    int64 // bytes read
}

func (r *followReader) Read(p []byte) (int, error) {
	for {
		n, err := r.f.Read(p)
		r.n += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		done, cancelled := r.g.complete(r.name)
		if cancelled {
			return 0, errAborted
		}
		if done {
			// What was written just before the close.
			n, err := r.f.Read(p)
			r.n += int64(n)
			if n > 0 {
				return n, nil
			}
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
		time.Sleep(time.Millisecond)
	}
}

// stop ends following: the writer is done, or gone.
func (g *GrowingImport) stop(cancel bool) {
	g.mu.Lock()
	g.writerDone = true
	g.cancelled = g.cancelled || cancel
	g.mu.Unlock()
	<-g.followDone
	if g.fd >= 0 {
		close(g.stopWatch)
	}
	<-g.watchDone
}

// Finish imports what following has not, once the writer has exited
// successfully, and returns the manifest of every regular file in the
// directory, as ImportDir would. Its chunks are pinned until it is passed
// to Save or Release.
func (g *GrowingImport) Finish() (*Manifest, ImportStats, error) {
	g.stop(false)
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		g.imp.fail(err)
		g.imp.finish()
		return nil, ImportStats{}, err
	}
	var files []pendingFile
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if fl, ok := g.followed[e.Name()]; ok && !g.rewritten[e.Name()] && !g.overflow {
			if info, err := e.Info(); err == nil && info.Size() == fl.size {
				files = append(files, fl.pf)
				continue
			}
		}
		f, err := g.imp.file(filepath.Join(g.dir, e.Name()))
		if err != nil {
			g.imp.fail(err)
			break
		}
		files = append(files, f)
	}
	return g.imp.manifest(g.dir, files)
}

// Cancel drops the import: the writer failed. The chunks written so far
// are left to GC.
func (g *GrowingImport) Cancel() {
	g.stop(true)
	g.imp.fail(errAborted)
	g.imp.finish()
}
