package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"ctrfs/cluster/statefiles"
	"ctrfs/cluster/transport"
	"ctrfs/images"
	"ctrfs/ops"
	"ctrfs/ops/moves"
	"ctrfs/ops/testhooks"
)

// The target's side of a migration is a session: Begin reserves the name,
// Missing and Put bring the chunks, Prepare unpacks the rootfs of the
// precopy (Put goes on meanwhile), Install creates the container (and
// restores it, for a live migration) as a provisional copy, and Commit
// makes it this host's. A provisional copy is removed on Abort, when the
// source goes quiet for longer than a lease, and when this daemon starts
// and finds one left by a crash: until the source commits, the source's copy
// is the container. The source's side is migrate.go.
//
// commitLease runs after Install, until Commit. CTRFS_TEST_COMMIT_LEASE, a
// test hook, shortens it so that a test of a target that died in the
// handover need not wait for the lease (with installSlack) on the source.
var commitLease = testhooks.Duration("CTRFS_TEST_COMMIT_LEASE", 15*time.Second)

// sessionIdle is how long a session waits for its source's next call (or
// renewal) before Install. CTRFS_TEST_SESSION_IDLE, a test hook, shortens
// it so that a test of the deadline need not wait half a minute.
var sessionIdle = testhooks.Duration("CTRFS_TEST_SESSION_IDLE", 30*time.Second)

// receiver is this host's side of the moves that arrive: their sessions,
// by token, and the markers of what they installed
// (STORE/cluster/incoming). It holds what the sessions use: ops' moves,
// the context of a move's work, the secret (a post-copy move's page
// server) and the log. It knows nothing of the members, of moves that
// leave or of the calls' arguments: the Service's methods below take
// those and use it.
type receiver struct {
	mv     *moves.Moves
	dir    string // STORE/cluster/incoming
	secret []byte
	opCtx  func() context.Context // Cluster.opCtx
	log    *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
}

func newReceiver(mv *moves.Moves, dir string, secret []byte, opCtx func() context.Context, log *slog.Logger) *receiver {
	return &receiver{mv: mv, dir: dir, secret: secret, opCtx: opCtx, log: log, sessions: map[string]*session{}}
}

type session struct {
	// mu is held through Install, so that Owner, Abort, Commit and the
	// lease wait for an install under way instead of racing it.
	mu                  sync.Mutex
	token, name, source string
	started             time.Time
	in                  *moves.Incoming
	installed           bool
	timer               *time.Timer
	prepare             time.Duration  // how long Prepare took, for the report
	lazy                bool           // restored post-copy: committed only once whole
	prepareState        time.Duration  // how long PrepareState took, for the report
	preparing           bool           // Prepare is under way: the session does not expire
	running             int            // calls of the session under way: it does not expire (callStarted)
	phases              []ops.KeyValue // timings of Install, for the report
}

// connectionClosed drops the sessions begun on the connection that have
// nothing installed: their source is gone or gave up, and the name should
// not stay reserved until the lease ends. Installed copies wait for their
// source to reconnect and settle, or for the lease.
func (s *Service) connectionClosed() {
	s.mu.Lock()
	begun := s.begun
	s.mu.Unlock()
	for _, sess := range begun {
		sess.mu.Lock()
		installed := sess.installed
		sess.mu.Unlock()
		if !installed {
			s.c.recv.drop(sess)
		}
	}
}

// WireChunk is one chunk as stored: zstd-compressed, named by the SHA-256
// of its content, which the receiver checks.
type WireChunk struct {
	Hash string
	Data []byte
}

type BeginArgs struct{ Name, Source string }
type MissingArgs struct {
	Token  string
	Hashes []string
}
type PutArgs struct {
	Token  string
	Chunks []WireChunk
}
type PrepareArgs struct {
	Token  string
	Rootfs *images.Manifest // of the precopy: the whole-tree archive
}
type PrepareStateArgs struct {
	Token string
	State *images.Manifest // a precopy dump of the processes
}
type InstallArgs struct {
	Token  string
	Rootfs *images.Manifest
	Items  map[string]*images.Manifest
	Start  bool // restore from the saved state among Items
	// A post-copy move's: the source's page server, host:port. The
	// restore leaves the memory there and the container runs at once.
	PageServer string
}

// LazyStateReply is what a post-copy copy is at (moves.LazyState) and why
// it failed.
type LazyStateReply struct{ State, Why string }
type OwnerArgs struct{ Name, Token string }

// CommitArgs carry the source's figures of the move, for the container's
// `info` here.
type CommitArgs struct {
	Token  string
	Report []ops.KeyValue
}

// Owner answers.
const (
	ownerNone        = "none"        // no such session and no container
	ownerPending     = "pending"     // a session, nothing installed yet
	ownerProvisional = "provisional" // installed, not committed
	ownerCommitted   = "committed"   // the container is this host's
)

func (s *Service) Begin(a BeginArgs, token *string) error {
	in, err := s.c.mv.Receive(a.Name)
	if err != nil {
		return transport.WireError(err)
	}
	b := make([]byte, 16)
	rand.Read(b)
	sess := &session{token: hex.EncodeToString(b), name: a.Name, source: a.Source, started: time.Now(), in: in}
	s.c.recv.mu.Lock()
	s.c.recv.sessions[sess.token] = sess
	sess.timer = time.AfterFunc(sessionIdle, func() { s.c.recv.expire(sess.token) })
	s.c.recv.mu.Unlock()
	s.mu.Lock()
	s.begun = append(s.begun, sess)
	s.mu.Unlock()
	s.c.cfg.Log.Info("cluster: receiving a container", "container", a.Name, "from", a.Source)
	*token = sess.token
	return nil
}

// session finds a session for a call of it and extends its lease. The
// call counts as the source's activity from its start to its end (done,
// which the caller must call): a call that runs longer than the lease (an
// install restoring a big container on a loaded host, a Put whose disk is
// slow) does not have its session expire under it, and the lease runs
// again from its end. Only the source's silence between calls expires a
// session; a source that dies mid-call closes its connection, which drops
// the session at once (connectionClosed).
func (r *receiver) session(token string) (sess *session, done func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sess, ok := r.sessions[token]
	if !ok {
		return nil, nil, ops.NewError(ops.ErrFailed, "no such migration session (it expired or was aborted)")
	}
	sess.running++
	r.extend(sess)
	var once sync.Once
	return sess, func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			sess.running--
			if r.sessions[token] == sess {
				r.extend(sess)
			}
		})
	}, nil
}

// extend restarts the lease of a session, for a caller holding r.mu.
func (r *receiver) extend(sess *session) {
	switch {
	case sess.preparing: // the timer starts again when it is done
	case sess.installed:
		sess.timer.Reset(commitLease)
	default:
		sess.timer.Reset(sessionIdle)
	}
}

func (s *Service) Missing(a MissingArgs, out *[]string) error {
	sess, done, err := s.c.recv.session(a.Token)
	if err != nil {
		return transport.WireError(err)
	}
	defer done()
	*out = sess.in.Chunks().Missing(a.Hashes)
	return nil
}

func (s *Service) Put(a PutArgs, out *int) error {
	sess, done, err := s.c.recv.session(a.Token)
	if err != nil {
		return transport.WireError(err)
	}
	defer done()
	for _, ch := range a.Chunks {
		if err := sess.in.Chunks().Put(ch.Hash, ch.Data); err != nil {
			return transport.WireError(ops.NewError(ops.ErrFailed, fmt.Sprintf("store chunk %s: %v", ch.Hash, err)))
		}
		*out += len(ch.Data)
	}
	return nil
}

// Prepare unpacks the precopy's rootfs where Install creates the
// container, so that Install applies only the changes since.
func (s *Service) Prepare(a PrepareArgs, out *bool) error {
	return s.c.recv.unpackAhead(a.Token, a.Rootfs, aheadRootfs, out)
}

// PrepareState unpacks a precopy dump of the processes, so that the
// restore at Install writes only what the final dump changed and restores
// from a directory of its own (see moves.Incoming.PrepareState).
func (s *Service) PrepareState(a PrepareStateArgs, out *bool) error {
	return s.c.recv.unpackAhead(a.Token, a.State, aheadState, out)
}

// ahead is what Prepare or PrepareState unpacks ahead of the install.
type ahead struct {
	call   string // the call, as its errors name it
	what   string // what it unpacks, as the log names it
	unpack func(*moves.Incoming, context.Context, *images.Manifest) error
	took   func(*session) *time.Duration // where the time it took goes, for Commit's report
}

var (
	aheadRootfs = ahead{"prepare", "rootfs", (*moves.Incoming).Prepare,
		func(sess *session) *time.Duration { return &sess.prepare }}
	aheadState = ahead{"prepare the state", "state", (*moves.Incoming).PrepareState,
		func(sess *session) *time.Duration { return &sess.prepareState }}
)

// unpackAhead unpacks mf as a says, for the session of token. The session
// does not expire meanwhile (a big rootfs may take longer than sessionIdle
// to unpack); its idle time starts again when it is done. A failure is
// logged and answered, and leaves the session to go on: Install then
// unpacks the whole rootfs, or restores from the store.
func (r *receiver) unpackAhead(token string, mf *images.Manifest, a ahead, out *bool) error {
	ctx := r.opCtx()
	sess, end, err := r.lockedSession(token, mf, a.call)
	if err != nil {
		return transport.WireError(err)
	}
	defer end()
	return r.preparing(sess, func() error {
		t0 := time.Now()
		err := a.unpack(sess.in, ctx, mf)
		*a.took(sess) = time.Since(t0)
		if err != nil {
			r.log.Warn("cluster: cannot unpack the "+a.what+" of an incoming container ahead of its install", "container", sess.name, "err", err)
			return transport.WireError(err)
		}
		*out = true
		return nil
	})
}

// preparing runs fn, work ahead of the install, for a session whose lock
// the caller holds, with the session's expiry stopped meanwhile.
func (r *receiver) preparing(sess *session, fn func() error) error {
	r.mu.Lock()
	live := r.sessions[sess.token] == sess && !sess.installed
	if live {
		sess.preparing = true
		sess.timer.Stop()
	}
	r.mu.Unlock()
	if !live {
		return transport.WireError(ops.NewError(ops.ErrFailed, "nothing to prepare (the session expired, was aborted or is installed)"))
	}
	defer func() {
		r.mu.Lock()
		sess.preparing = false
		sess.timer.Reset(sessionIdle)
		r.mu.Unlock()
	}()
	return fn()
}

// lockedSession is session for a call that brings a manifest (a rootfs,
// a state), with the session's lock taken: the caller calls end, which
// unlocks sess.mu and ends the call (session's done).
func (r *receiver) lockedSession(token string, mf *images.Manifest, what string) (sess *session, end func(), err error) {
	sess, done, err := r.session(token)
	if err != nil {
		return nil, nil, err
	}
	if mf == nil {
		done()
		return nil, nil, ops.NewError(ops.ErrInvalid, what+" without a manifest")
	}
	sess.mu.Lock()
	return sess, func() { sess.mu.Unlock(); done() }, nil
}

func (s *Service) Install(a InstallArgs, out *bool) error {
	sess, end, err := s.c.recv.lockedSession(a.Token, a.Rootfs, "install")
	if err != nil {
		return transport.WireError(err)
	}
	defer end()
	if err := s.c.recv.markIncoming(sess); err != nil {
		return transport.WireError(ops.NewError(ops.ErrFailed, "record the incoming container: "+err.Error()))
	}
	ctx := s.c.opCtx()
	t0 := time.Now()
	var log []byte // the restore's, kept for the bug report if it fails
	err = sess.in.Install(ctx, a.Rootfs, a.Items)
	sess.phases = []ops.KeyValue{seconds("target-install-seconds", time.Since(t0))}
	if err == nil && a.Start && a.PageServer != "" {
		t1 := time.Now()
		if log, err = s.c.recv.startLazy(ctx, sess.in, a.Token, a.PageServer); err != nil {
			s.c.cfg.Log.Warn("cluster: lazy restore of an incoming container failed", "container", sess.name, "log", lastLines(log, 5))
		}
		sess.lazy = true
		sess.phases = append(sess.phases, seconds("target-restore-seconds", time.Since(t1)))
	} else if err == nil && a.Start {
		t1 := time.Now()
		if log, err = sess.in.Start(ctx); err != nil {
			s.c.cfg.Log.Warn("cluster: restore of an incoming container failed", "container", sess.name, "log", lastLines(log, 5))
		}
		sess.phases = append(sess.phases, seconds("target-restore-seconds", time.Since(t1)))
		sess.phases = append(sess.phases, sess.in.Phases...)
	}
	if err != nil {
		s.c.recv.dropLocked(sess)
		err = ops.NewError(ops.ErrFailed, fmt.Sprintf("%s could not take %s: %v", s.c.cfg.Host, sess.name, err))
		s.c.mv.RecordReceiveFailed(sess.name, time.Since(t0), log, err)
		return transport.WireError(err)
	}
	s.c.recv.mu.Lock()
	sess.installed = true
	sess.timer.Reset(commitLease)
	s.c.recv.mu.Unlock()
	// A test breaks the connection here: the source then does not know
	// that the container is installed.
	ops.PausePoint("install-answer")
	*out = true
	return nil
}

func (s *Service) Commit(a CommitArgs, out *bool) error {
	received := time.Now()
	s.c.recv.mu.Lock()
	sess, ok := s.c.recv.sessions[a.Token]
	s.c.recv.mu.Unlock()
	if ok {
		sess.mu.Lock()
		sess.mu.Unlock()
	}
	if ok && sess.lazy {
		// A post-copy copy is kept only whole (the source asked first).
		if st, why := sess.in.LazyState(); st != moves.LazyWhole {
			return transport.WireError(ops.NewError(ops.ErrFailed, fmt.Sprintf("cannot commit %s: its memory is %s %s", sess.name, st, why)))
		}
	}
	s.c.recv.mu.Lock()
	sess, ok = s.c.recv.sessions[a.Token]
	if ok && sess.installed {
		delete(s.c.recv.sessions, a.Token)
		sess.timer.Stop()
	}
	s.c.recv.mu.Unlock()
	if !ok || !sess.installed {
		return transport.WireError(ops.NewError(ops.ErrFailed, "nothing to commit (the session expired or was aborted)"))
	}
	if err := sess.in.Commit(); err != nil {
		s.c.cfg.Log.Error("cluster: cannot unfreeze a received container", "container", sess.name, "err", err)
	}
	// The source timed the move up to the handover; the container was
	// down until the unfreeze just now too.
	commit := time.Since(received)
	addSeconds(a.Report, commit, "move-seconds")
	if slices.Contains(a.Report, ops.KeyValue{Key: "move-mode", Value: "live"}) {
		addSeconds(a.Report, commit, "downtime-seconds")
	}
	if sess.prepare > 0 {
		a.Report = append(a.Report, seconds("target-prepare-seconds", sess.prepare))
	}
	if sess.prepareState > 0 {
		a.Report = append(a.Report, seconds("target-prepare-state-seconds", sess.prepareState))
	}
	a.Report = append(a.Report, sess.phases...)
	a.Report = append(a.Report, seconds("target-commit-seconds", commit))
	os.Remove(s.c.recv.incomingMarker(sess.name))
	sess.in.Close()
	s.c.mv.RecordReceived(sess.name, time.Since(sess.started), a.Report)
	s.c.cfg.Log.Info("cluster: received a container", "container", sess.name, "from", sess.source)
	*out = true
	return nil
}

// LazyState answers where the post-copy copy of a session is at; a
// session that is gone is "failed". Asking keeps the session's lease.
func (s *Service) LazyState(token string, out *LazyStateReply) error {
	sess, done, err := s.c.recv.session(token)
	if err != nil {
		*out = LazyStateReply{State: string(moves.LazyFailed), Why: err.Error()}
		return nil
	}
	defer done()
	sess.mu.Lock()
	defer sess.mu.Unlock()
	st, why := sess.in.LazyState()
	*out = LazyStateReply{State: string(st), Why: why}
	return nil
}

// startLazy is Incoming.StartLazy from the source's host:port, for the
// move of token.
func (r *receiver) startLazy(ctx context.Context, in *moves.Incoming, token, pageServer string) ([]byte, error) {
	host, port, err := net.SplitHostPort(pageServer)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		return nil, ops.NewError(ops.ErrInvalid, "a post-copy move with the page server "+pageServer)
	}
	creds, err := pageServerTLS(r.secret, token)
	if err != nil {
		return nil, err
	}
	return in.StartLazy(ctx, host, p, creds)
}

func (s *Service) Abort(token string, out *bool) error {
	s.c.recv.mu.Lock()
	sess, ok := s.c.recv.sessions[token]
	s.c.recv.mu.Unlock()
	if ok {
		s.c.recv.drop(sess)
	}
	*out = true
	return nil
}

// Renew extends a session's lease: the source calls it while it works
// between calls (keepAlive, cluster/keepalive.go).
func (s *Service) Renew(token string, out *bool) error {
	_, done, err := s.c.recv.session(token)
	if err != nil {
		return transport.WireError(err)
	}
	done()
	*out = true
	return nil
}

func (s *Service) Owner(a OwnerArgs, out *string) error {
	s.c.recv.mu.Lock()
	sess, ok := s.c.recv.sessions[a.Token]
	s.c.recv.mu.Unlock()
	if ok {
		sess.mu.Lock() // an install under way decides the answer
		sess.mu.Unlock()
	}
	switch {
	case ok && sess.installed:
		*out = ownerProvisional
	case ok:
		*out = ownerPending
	case s.c.m.Exists(a.Name) && !exists(s.c.recv.incomingMarker(a.Name)):
		*out = ownerCommitted
	default:
		*out = ownerNone
	}
	return nil
}

// expire ends a session whose source went quiet: none of its calls is
// under way (the end of one restarts the lease).
func (r *receiver) expire(token string) {
	r.mu.Lock()
	sess, ok := r.sessions[token]
	if ok && sess.running > 0 {
		ok = false
	}
	r.mu.Unlock()
	if ok {
		r.log.Warn("cluster: migration session expired; removing what arrived", "container", sess.name, "from", sess.source)
		r.drop(sess)
	}
}

// drop removes a session and whatever it installed.
func (r *receiver) drop(sess *session) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	r.dropLocked(sess)
}

// dropLocked is drop for a caller holding sess.mu.
func (r *receiver) dropLocked(sess *session) {
	r.mu.Lock()
	if r.sessions[sess.token] != sess {
		r.mu.Unlock()
		return
	}
	delete(r.sessions, sess.token)
	sess.timer.Stop()
	r.mu.Unlock()
	if err := sess.in.Discard(); err != nil {
		r.log.Error("cluster: cannot remove a provisional container", "container", sess.name, "err", err)
	}
	sess.in.Close()
	os.Remove(r.incomingMarker(sess.name))
}

func (r *receiver) incomingMarker(name string) string {
	return filepath.Join(r.dir, name+".json")
}

func (r *receiver) markIncoming(sess *session) error {
	data, _ := json.Marshal(map[string]string{"source": sess.source, "token": sess.token})
	return statefiles.Write(r.incomingMarker(sess.name), data)
}

// recoverIncoming removes provisional containers that a crash left: their
// sources still hold the container.
func (r *receiver) recoverIncoming() {
	for _, name := range journals(r.dir, r.log) {
		r.log.Warn("cluster: removing a container whose migration here was not committed", "container", name)
		if err := r.mv.Remove(name); err != nil {
			r.log.Error("cluster: cannot remove an uncommitted container", "container", name, "err", err)
			continue
		}
		os.Remove(r.incomingMarker(name))
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
