package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The FUSE connection, and with it the daemon's serve loop, ends when the
// last mount of it goes. But every mount namespace made while the daemon
// is mounted holds a copy of its mount: LXC runs each CRIU dump and
// restore in one (a post-copy move's page server lives for the whole
// transfer), and so does any other process started with a mount
// namespace of its own (another daemon, a service). Where / is not a
// shared mount (this host's is not), the daemon's unmount does not reach
// those copies, so the connection lived on, and the daemon waited in its
// exit, until the last process in each such namespace had ended: SIGTERM
// went unanswered for as long as that took.
//
// So once its own mount is gone, the daemon ends the connection itself
// (fusectl's abort) as soon as no request waits for an answer: the
// operations under way still finish and answer first, as SIGTERM
// promises, and the copies then fail with ENOTCONN, as every mount of a
// daemon that exited does.

// connectionQuiet is how long no request may have waited before the
// connection is aborted: the caller of an operation answered just now
// closes its file right after, and that close (FUSE's flush) is still
// answered.
const connectionQuiet = 500 * time.Millisecond

// endConnection aborts FUSE connection conn, mounted on dir in this mount
// namespace, once dir no longer has it (the daemon's unmount, lazy or
// not, is done) and no request on it has waited for connectionQuiet. It
// returns then, or once served is closed: the connection ended by itself.
func endConnection(dir string, conn int, served <-chan struct{}, log *slog.Logger) {
	const poll = 100 * time.Millisecond
	tick := time.NewTicker(poll)
	defer tick.Stop()
	quiet := time.Duration(0)
	for {
		select {
		case <-served:
			return
		case <-tick.C:
		}
		if m, err := mountAt(dir); err != nil || (m != nil && m.minor == conn) {
			continue // the unmount is under way
		}
		n, err := waitingRequests(conn)
		if errors.Is(err, os.ErrNotExist) {
			return // the connection has ended
		}
		if err != nil {
			log.Warn("cannot see the requests waiting on the FUSE connection; waiting for every copy of the mount to go", "connection", conn, "err", err)
			return
		}
		if n > 0 {
			quiet = 0
			continue
		}
		if quiet += poll; quiet < connectionQuiet {
			continue
		}
		log.Info("the mount is gone here but its FUSE connection lives on (a copy of the mount in another mount namespace, or a file still open on it): aborting it",
			"connection", conn)
		if err := abortConnection(conn); err != nil {
			log.Error("abort the FUSE connection", "connection", conn, "err", err)
		}
		return
	}
}

// waitingRequests is the number of requests on FUSE connection conn that
// wait for an answer or are being answered (fusectl's waiting).
func waitingRequests(conn int) (int, error) {
	if err := mountFusectl(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(fusectlDir, strconv.Itoa(conn), "waiting"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
