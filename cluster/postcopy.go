package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"time"

	"ctrfs/cluster/transport"
	"ctrfs/images"
	"ctrfs/ops"
	"ctrfs/ops/moves"
)

// Post-copy moves (`move HOST --post-copy`, or every move with serve
// --post-copy-moves): the source dumps with CRIU's --lazy-pages, so that
// the memory stays in the frozen tasks and its page server hands it out;
// the target restores with --lazy-pages at once and its lazy-pages daemon
// fills the pages in through userfaultfd, on demand and in the
// background. The source's container is held (ops/savedstate/hold.go) from the dump
// until the end: frozen and off the wire, its TCP connections intact. The downtime is the non-memory state's; the risk is that
// until the last page has arrived the container's memory is whole on
// neither host: if the source host dies then, it is lost.
//
// What must hold all the same, and what CRIU does not see to (cr-dump.c,
// page-xfer.c, uffd.c): any close of the page server's connection counts
// as success, even after a failed restore on the target, and CRIU would
// then kill the source's tasks; and a target whose lazy-pages daemon died
// runs on with zero-filled pages for what never arrived. So the source
// dumps its held container with --leave-running (its tasks are kept,
// frozen, whatever the end of the transfer, ops/moves/lazydump.go), a watcher on the target kills a copy whose daemon
// failed (ops/lazypages/watch.go), and each side decides from what it
// sees itself (afterLazyDump, afterLazyDaemon), never from CRIU's exit
// alone: the source lets go only on the target's word, over the
// authenticated channel, that its copy is whole; otherwise the target's
// copy is aborted first and the source's tasks resume.
//
// The journal records the dump's directory: a source daemon killed during
// the transfer settles it when it starts again (recoverPostCopy).

// canPostCopy says why this move cannot be post-copy: an EOPNOTSUPP error
// naming the host that cannot and CRIU's words, or nil.
func (mg *migration) canPostCopy(target Facts) error {
	refuse := func(host string, why any) error {
		return ops.NewError(ops.ErrUnsupported, fmt.Sprintf("cannot move %s post-copy: %s cannot do CRIU lazy pages (%v); move it without --post-copy", mg.o.Name(), host, why))
	}
	if _, unprivileged, _ := mg.o.IDMap(); unprivileged && target.NoUnprivilegedLazyPages != "" {
		return refuse(mg.peer.Name, "for an unprivileged container: "+target.NoUnprivilegedLazyPages+"; set vm.unprivileged_userfaultfd to 1 there, or run ctrfs's CRIU there on Linux 6.1 or later, to allow them")
	}
	if err := moves.LazyPages(); err != nil {
		return refuse(mg.c.cfg.Host, err)
	}
	var why string
	if err := mg.call("Host.LazyPages", true, &why); err != nil {
		return refuse(mg.peer.Name, err)
	}
	if why != "" {
		return refuse(mg.peer.Name, why)
	}
	return nil
}

// pageServerAddr is this host's address on the way to endpoint: the
// source's page server listens there only, for the target to connect to.
func pageServerAddr(endpoint string) (string, int, error) {
	conn, err := net.Dial("udp", endpoint)
	if err != nil {
		return "", 0, err
	}
	ip := conn.LocalAddr().(*net.UDPAddr).IP.String()
	conn.Close()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", 0, err
	}
	defer l.Close()
	return ip, l.Addr().(*net.TCPAddr).Port, nil
}

// pageServerTLS are this end's TLS credentials for the page server of the
// move of token (ops/lazypages/tls.go): their CA is derived from the cluster
// secret and the token, which only this move's two hosts know, so only
// they can make a certificate that the other end accepts.
func pageServerTLS(secret []byte, token string) (*moves.PageServerTLS, error) {
	seed, err := transport.PageServerSeed(secret, token)
	if err == nil {
		var creds *moves.PageServerTLS
		if creds, err = moves.NewPageServerTLS(seed); err == nil {
			return creds, nil
		}
	}
	return nil, ops.NewError(ops.ErrFailed, "make the page server's TLS credentials: "+err.Error())
}

// postCopy is moveOut after the precopy for a post-copy move of a running
// container: a freeze of its own (freezeLazy) that leaves the memory here,
// the handover with this host's page server, then a phase of its own
// while the container runs on the target and its memory arrives (fill),
// and a commit of its own (commitLazy). From the dump on, until the
// target's copy is whole and committed, a failure aborts that copy and
// resumes the tasks here (resumeLazy).
func (mg *migration) postCopy(ctx context.Context) error {
	addr, port, creds, err := mg.pageServer()
	if err != nil {
		return mg.fail(ctx, err, false) // it still runs here
	}
	dump, err := mg.freezeLazy(ctx, addr, port, creds)
	if err != nil {
		return mg.cancel(ctx, err) // it still runs here
	}
	state, err := mg.lazyImages(ctx, dump)
	if err != nil {
		return mg.resumeLazy(ctx, mg.j, dump, err)
	}
	defer mg.o.Store().Release(state)
	if err := mg.sendFrozen(ctx, state); err != nil {
		return mg.resumeLazy(ctx, mg.j, dump, err)
	}
	sent := time.Since(mg.frozeAt)
	if err := mg.handover(ctx, net.JoinHostPort(addr, fmt.Sprint(port))); err != nil {
		return mg.resumeLazy(ctx, mg.j, dump, err)
	}
	downtime := time.Since(mg.frozeAt)
	fill, err := mg.fill(ctx, dump)
	if err != nil {
		return mg.resumeLazy(ctx, mg.j, dump, err)
	}
	return mg.commitLazy(ctx, dump, sent, downtime, fill)
}

// pageServer chooses where this host's page server listens for the
// target, and makes its TLS credentials.
func (mg *migration) pageServer() (addr string, port int, creds *moves.PageServerTLS, err error) {
	addr, port, err = pageServerAddr(mg.peer.Meta.Endpoint)
	if err != nil {
		return "", 0, nil, ops.NewError(ops.ErrFailed, "choose the page server's address: "+err.Error())
	}
	creds, err = pageServerTLS(mg.c.cfg.Secret, mg.token)
	return addr, port, creds, err
}

// freezeLazy is freeze for a post-copy move: CRIU dumps all but the
// memory, which stays in the stopped tasks for the page server at
// addr:port (moves.Outgoing.StartLazyDump). From here the container is down.
// A dump that did not start leaves it running here (cancel).
func (mg *migration) freezeLazy(ctx context.Context, addr string, port int, creds *moves.PageServerTLS) (*moves.LazyDump, error) {
	mg.phase("freeze")
	mg.frozeAt = time.Now()
	return mg.o.StartLazyDump(ctx, addr, port, creds)
}

// lazyImages records the lazy dump in the journal, by which a daemon
// killed from here on settles the move (recoverPostCopy), and returns the
// dump's images: the state that travels, without the memory.
func (mg *migration) lazyImages(ctx context.Context, dump *moves.LazyDump) (*images.Manifest, error) {
	mg.j.LazyDump = dump.Dir
	if err := mg.c.writeJournal(mg.j); err != nil {
		return nil, ops.NewError(ops.ErrFailed, "write migration journal: "+err.Error())
	}
	return dump.Images(ctx)
}

// fill is the postcopy phase: the container runs on the target and its
// memory arrives, until the target's copy is whole (waitWhole). It
// returns how long that took.
func (mg *migration) fill(ctx context.Context, dump *moves.LazyDump) (time.Duration, error) {
	mg.phase("postcopy")
	filling := time.Now()
	err := mg.waitWhole(ctx, mg.j, dump)
	return time.Since(filling), err
}

// commitLazy is commit for a post-copy move whose copy on the target is
// whole: the target keeps it, the dump's CRIU stops and the copy here goes.
// If the target's answer is lost, settle commits the copy if the target
// still holds it; if it dropped it, the tasks here resume.
func (mg *migration) commitLazy(ctx context.Context, dump *moves.LazyDump, sent, downtime, fill time.Duration) error {
	mg.phase("commit")
	total := time.Since(mg.start)
	report := []ops.KeyValue{
		{Key: "moved-from", Value: mg.c.cfg.Host},
		{Key: "move-mode", Value: "post-copy"},
		{Key: "move-rootfs", Value: mg.o.RootfsTransfer()},
		seconds("move-seconds", total),
		seconds("precopy-seconds", mg.precopied),
		seconds("downtime-seconds", downtime),
		seconds("freeze-send-seconds", sent),
		seconds("handover-seconds", mg.handedOver),
		seconds("postcopy-fill-seconds", fill),
		{Key: "move-sent-bytes", Value: fmt.Sprint(mg.sent)},
	}
	if err := mg.call("Host.Commit", CommitArgs{Token: mg.token, Report: report}, new(bool)); err != nil {
		if mg.c.settle(ctx, mg.j) != ownerCommitted {
			return mg.resumeLazy(ctx, mg.j, dump, err)
		}
	}
	dump.Stop()
	mg.moved(report, downtime)
	mg.c.cfg.Log.Info("cluster: moved post-copy", "container", mg.j.Name, "to", mg.peer.Name,
		"seconds", total.Seconds(), "downtime", downtime.Seconds(), "fill", fill.Seconds(), "sent", mg.sent)
	return nil
}

// lazyPoll is how often the source asks the target about its pages.
const lazyPoll = 50 * time.Millisecond

// waitWhole waits until the target's copy is whole (nil) or the source
// must resume (the error says why).
func (mg *migration) waitWhole(ctx context.Context, j journal, dump *moves.LazyDump) error {
	lastHeard := time.Now()
	for {
		end := dumpRunning
		ended, derr := dump.Ended()
		if ended {
			end = dumpCompleted
			if derr != nil {
				end = dumpFailed
			}
		}
		target, why, err := mg.c.lazyState(mg.client, j)
		if err == nil {
			lastHeard = time.Now()
		}
		switch afterLazyDump(end, target) {
		case sourceLetsGo:
			return nil
		case sourceResumes:
			if end == dumpFailed {
				return ops.NewError(ops.ErrFailed, fmt.Sprintf("the transfer of its memory broke (%s)", moves.ExplainCRIU(dump.Log())))
			}
			return ops.NewError(ops.ErrFailed, fmt.Sprintf("%s did not keep its copy: %s", mg.peer.Name, why))
		}
		if time.Since(lastHeard) > commitLease+installSlack {
			// The target has dropped a copy whose source went quiet.
			return err
		}
		time.Sleep(lazyPoll)
	}
}

// lazyState asks the target about its copy, on client or, if that
// connection broke, a new one.
func (c *Cluster) lazyState(client *rpc.Client, j journal) (targetLazyState, string, error) {
	var r LazyStateReply
	err := errors.New("no connection")
	if client != nil {
		err = transport.CallError(j.Target, client.Call("Host.LazyState", j.Token, &r))
	}
	if errors.Is(err, ops.ErrUnreachable) || client == nil {
		err = c.callEndpoint(j.Endpoint, "Host.LazyState", j.Token, &r)
	}
	if err != nil {
		return targetUnknown, "", err
	}
	switch moves.LazyState(r.State) {
	case moves.LazyFilling:
		return targetFilling, "", nil
	case moves.LazyWhole:
		return targetWhole, "", nil
	}
	return targetFailed, r.Why, nil
}

// resumeLazy ends a post-copy move that did not finish: the target's copy
// is aborted first (the container must not run on both hosts), then the
// dump is stopped and the tasks here resume.
func (mg *migration) resumeLazy(ctx context.Context, j journal, dump *moves.LazyDump, cause error) error {
	mg.c.abortLazy(ctx, mg.client, j)
	dump.Stop()
	msg := fmt.Sprintf("move of %s to %s failed: %v", j.Name, mg.peer.Name, cause)
	if err := mg.o.ResumeAfterLazyDump(); err != nil {
		// The journal stays: the daemon's next start settles the move
		// again (recoverPostCopy) and resumes the stopped tasks.
		return ops.NewError(ops.ErrFailed, msg+fmt.Sprintf("; resuming it here failed too: %v", err))
	}
	os.Remove(mg.c.journalPath(j.Name))
	msg += "; it is RUNNING here again"
	if errors.Is(cause, ops.ErrUnreachable) {
		return ops.NewError(ops.ErrUnreachable, msg)
	}
	return ops.NewError(ops.ErrFailed, msg)
}

// abortLazy has the target drop its copy, and returns once it has (or,
// unreachable, once its lease on a copy whose source went quiet is over
// and it has dropped it by itself).
func (c *Cluster) abortLazy(ctx context.Context, client *rpc.Client, j journal) {
	if client != nil && client.Call("Host.Abort", j.Token, new(bool)) == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, commitLease+installSlack)
	defer cancel()
	for ; ctx.Err() == nil; time.Sleep(time.Second) {
		if c.callEndpoint(j.Endpoint, "Host.Abort", j.Token, new(bool)) == nil {
			return
		}
	}
}

// recoverPostCopy settles a post-copy move that this daemon was killed
// in, after the lazy dump began: the target's word decides. A whole copy
// there is committed and the tasks here (stopped) are removed; otherwise
// the copy there is aborted and the tasks here resume, once the dump's
// CRIU, which may still serve pages, has been stopped. If the tasks here
// are gone too (the host restarted), the memory is lost: the container
// stays here STOPPED, its rootfs kept, and the error is logged.
func (c *Cluster) recoverPostCopy(ctx context.Context, j journal) (owner string, err error) {
	// The lease is the deadline of the target's answer alone: an abort
	// below gets its own.
	leased, cancel := context.WithTimeout(ctx, commitLease+installSlack)
	defer cancel()
	for owner == "" {
		state, _, err := c.lazyState(nil, j)
		switch {
		case err != nil && leased.Err() != nil:
			owner = ownerNone
		case err != nil || state == targetFilling:
			time.Sleep(time.Second)
		case state == targetWhole:
			if c.callEndpoint(j.Endpoint, "Host.Commit", CommitArgs{Token: j.Token}, new(bool)) == nil {
				owner = ownerCommitted
			}
		default:
			// No session there: committed before this daemon died, or
			// dropped.
			if o, err := c.askOwner(j); err == nil && o == ownerCommitted {
				owner = ownerCommitted
			} else {
				c.abortLazy(ctx, nil, j)
				owner = ownerNone
			}
		}
	}
	moves.StopLazyDump(j.LazyDump)
	if owner == ownerCommitted {
		return owner, c.mv.Remove(j.Name)
	}
	return owner, c.mv.ResumeAfterLazyDump(j.Name)
}

// LazyPages answers why this host cannot do CRIU lazy pages, or "".
func (s *Service) LazyPages(_ bool, why *string) error {
	if err := moves.LazyPages(); err != nil {
		*why = err.Error()
	}
	return nil
}

// What the source does once its lazy dump has ended or the target has
// answered.
type sourceAction int

const (
	sourceWaits   sourceAction = iota // pages are still going: ask again
	sourceLetsGo                      // the target's copy is whole and running
	sourceResumes                     // abort the target's copy, resume the tasks here
)

// lazyDumpEnd is how the source's `criu dump --lazy-pages` ended.
type lazyDumpEnd int

const (
	dumpRunning   lazyDumpEnd = iota // still serving pages
	dumpCompleted                    // exit 0: the connection closed; the tasks are held (frozen)
	dumpFailed                       // transfer error or CRIU killed: the tasks are held (frozen)
)

// targetLazyState is what the target reports of its copy.
type targetLazyState int

const (
	targetUnknown targetLazyState = iota // no answer (yet)
	targetFilling                        // restored; its lazy-pages daemon still fetches
	targetWhole                          // restored, every page in, running or frozen
	targetFailed                         // its restore failed or it killed its copy
)

// afterLazyDump decides the source's side. A target that failed means
// the source's tasks still hold the memory: the source stops its dump
// (CRIU would wait for good) and resumes. A completed dump is trusted
// only with the target's word that its copy is whole: the close CRIU
// counts as success may follow a failed restore or a killed lazy-pages
// daemon there, and the hold kept the tasks for that case.
func afterLazyDump(dump lazyDumpEnd, target targetLazyState) sourceAction {
	switch dump {
	case dumpFailed:
		return sourceResumes
	case dumpRunning:
		if target == targetFailed {
			return sourceResumes
		}
		return sourceWaits
	}
	switch target {
	case targetWhole:
		return sourceLetsGo
	case targetFailed:
		return sourceResumes
	}
	return sourceWaits
}

// afterLazyDaemon decides the target's side once its lazy-pages daemon has
// exited: with every page in, the copy is whole; otherwise its page source
// vanished or the transfer broke, and the copy is killed rather than left
// to run on zero-filled pages.
func afterLazyDaemon(exitedOK, restoreOK bool) (keep bool) {
	return exitedOK && restoreOK
}
