package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"os"
	"time"

	"ctrfs/cluster/members"
	"ctrfs/cluster/transport"
	"ctrfs/images"
	"ctrfs/ops"
	"ctrfs/ops/moves"
	"ctrfs/ops/storage"
)

// Migrate moves a container to another host: live if it runs, cold if it
// is stopped. Its phases, and what a failure in each leaves:
//   - check: the target proves the secret and is compared with this host
//     (EOPNOTSUPP if it cannot restore what this host dumps), and a running
//     container gets the part of `check` that needs no dump (EOPNOTSUPP
//     with check's explanation); the name is reserved there (EEXIST if
//     taken). Nothing has moved.
//   - precopy: rootfs, config, snapshots and saved state go while the
//     container keeps running; only chunks the target lacks are sent. The
//     target unpacks the rootfs where it will create the container, while
//     the memory precopy goes on.
//   - freeze (live): the container is checkpointed and held here, its
//     processes frozen and off the wire (ops/savedstate/hold.go), then what changed
//     in the rootfs since and the state go; again only what the target
//     lacks. From here the container is down.
//   - handover: the target applies the changes to the rootfs it unpacked,
//     creates the container and restores it, as a provisional copy.
//   - commit: the target keeps it; this host removes its copy.
//
// Until commit this host's copy is the container: any failure before it
// aborts the target's copy and lets the held processes here run on (they
// are never restored from the images, which may not restore), so the
// container ends RUNNING on exactly one host, with the same processes if
// here. The processes here die only once the target has committed. A journal on disk lets a restarted daemon
// settle a migration it was killed in (journal.go).
//
// Each phase is the method of migration of its name, and moveOut runs
// them in turn; the target's side is receive.go.
func (c *Cluster) Migrate(name, host string) error {
	return c.migrate(name, host, c.cfg.PostCopyMoves, false)
}

// MigrateFullDumps is Migrate with precopy rounds of whole dumps even
// where CRIU could pre-dump (precopy.go): the comparison of the two on
// the same hosts.
func (c *Cluster) MigrateFullDumps(name, host string) error {
	return c.migrate(name, host, false, true)
}

// MigratePostCopy is Migrate of a running container with CRIU's lazy
// pages (post-copy): see postcopy.go.
func (c *Cluster) MigratePostCopy(name, host string) error {
	return c.migrate(name, host, true, false)
}

func (c *Cluster) migrate(name, host string, postCopy, fullDumps bool) error {
	c.mu.Lock()
	c.lastMoves[name] = host
	c.mu.Unlock()
	return c.mv.Move(c.opCtx(), name, "move", func(ctx context.Context, o *moves.Outgoing) error {
		if host == c.cfg.Host {
			return ops.NewError(ops.ErrInvalid, fmt.Sprintf("%s is already on %s", name, host))
		}
		if err := ops.ValidateName(host); err != nil {
			return err
		}
		return c.moveOut(ctx, o, host, postCopy, fullDumps)
	})
}

// migration is one container leaving, with its connection to the target
// and what its phases hand on to the next.
type migration struct {
	c      *Cluster
	o      *moves.Outgoing
	client *rpc.Client
	peer   Peer
	start  time.Time
	token  string  // the target's session (check)
	j      journal // written by check
	live   bool    // the container ran at the check: it moves live
	// fullDumps: precopy rounds are whole dumps even where CRIU could
	// pre-dump (move --full-dumps).
	fullDumps bool
	// What the target is to install: the last rootfs archive and items
	// sent (precopy, then the freeze).
	rootfs *images.Manifest
	items  map[string]*images.Manifest

	sent       int64          // compressed bytes sent
	rounds     int            // memory precopy rounds
	memory     precopyReport  // what the memory precopy did, round by round
	frozenSent int64          // compressed bytes sent while the container was down
	precopied  time.Duration  // from the start to the end of the precopy
	frozeAt    time.Time      // when the freeze began: the downtime runs from there
	timings    []ops.KeyValue // how a live pre-copy move's downtime was spent, for its report
	handedOver time.Duration  // how long the handover took
	// stopRenewing ends the renewals of the target's session (keepAlive)
	// at the handover, from where the target's commit lease applies.
	stopRenewing func()
}

// phase starts a phase of the move: `info` shows it (moves.Outgoing.Phase)
// and `events` gets a line `move-PHASE started SECONDS`, the seconds
// since the move began.
func (mg *migration) phase(name string) {
	mg.o.Phase(name)
	mg.c.mv.PublishEvent(mg.o.Name(), "move-"+name, "started", time.Since(mg.start))
}

// moveOut is Migrate's work under the container's lock: the phases in
// order, and after each what undoes the move if it failed. Each phase's
// method says what its failure leaves. A post-copy move shares the check
// and the precopy, then goes on in postCopy.
func (c *Cluster) moveOut(ctx context.Context, o *moves.Outgoing, host string, postCopy, fullDumps bool) error {
	start := time.Now()
	client, peer, err := c.connect(host)
	if err != nil {
		return err
	}
	defer client.Close()
	mg := &migration{c: c, o: o, client: client, peer: peer, start: start, fullDumps: fullDumps}

	if err := mg.check(ctx, postCopy); err != nil {
		return err // nothing has moved
	}
	defer o.Forget()
	mg.stopRenewing = mg.keepAlive()
	defer mg.stopRenewing()
	if err := mg.precopy(ctx, mg.live && !postCopy); err != nil {
		return mg.fail(ctx, err, false) // it still runs here
	}
	if mg.live && postCopy {
		return mg.postCopy(ctx)
	}
	if mg.live {
		if err := mg.freeze(ctx); err != nil {
			return mg.cancel(ctx, err) // it still runs here
		}
		before := mg.sent
		err := mg.sendFrozen(ctx, nil)
		mg.frozenSent = mg.sent - before
		if err != nil {
			return mg.fail(ctx, err, true) // it is restored here
		}
	}
	if err := mg.handover(ctx, ""); errors.Is(err, ops.ErrUnreachable) {
		// The connection broke: the target may have finished installing,
		// and then unknownOutcome has it keep its copy.
		if err := mg.unknownOutcome(ctx, err, mg.live); err != nil {
			return err
		}
		mg.done(mg.downtime(), 0)
		return nil
	} else if err != nil {
		return mg.fail(ctx, err, mg.live)
	}
	return mg.commit(ctx)
}

// check compares the target with this host (EOPNOTSUPP if it cannot
// restore what this host dumps or give an unprivileged container its id
// map, or, for a post-copy move, if either host
// cannot do lazy pages) and refuses a FROZEN container (EBUSY); then the
// target reserves the name (EEXIST if taken) and the journal is written.
// A failure leaves nothing moved and nothing reserved: a reservation
// whose journal could not be written is aborted.
func (mg *migration) check(ctx context.Context, postCopy bool) error {
	c, o := mg.c, mg.o
	mg.phase("check")
	var facts Facts
	if err := mg.call("Host.Facts", true, &facts); err != nil {
		return err
	}
	if err := members.CanTake(c.facts, facts); err != nil {
		return ops.NewError(ops.ErrUnsupported, fmt.Sprintf("%s cannot take %s: %v", mg.peer.Name, o.Name(), err))
	}
	if err := mg.canHoldMap(facts); err != nil {
		return err
	}
	o.TargetReceivesStreams(facts.Storage == string(storage.Btrfs))
	status, err := o.Status()
	if err != nil {
		return err
	}
	if status == "FROZEN" {
		return ops.NewError(ops.ErrBusy, fmt.Sprintf("cannot move %s: it is FROZEN", o.Name()))
	}
	mg.live = status == "RUNNING"
	if mg.live {
		// What check finds without a dump refuses it before anything is
		// sent, rather than at the first dump after the rootfs went.
		if err := o.QuickCheck(); err != nil {
			return err
		}
	}
	if mg.live && postCopy {
		// Refused before anything moves: see postcopy.go.
		if err := mg.canPostCopy(facts); err != nil {
			return err
		}
	}
	if err := mg.call("Host.Begin", BeginArgs{Name: o.Name(), Source: c.cfg.Host}, &mg.token); err != nil {
		return err
	}
	mg.j = journal{Name: o.Name(), Target: mg.peer.Name, Endpoint: mg.peer.Meta.Endpoint, Token: mg.token, Live: mg.live}
	if err := c.writeJournal(mg.j); err != nil {
		mg.abort(ctx)
		return ops.NewError(ops.ErrFailed, "write migration journal: "+err.Error())
	}
	return nil
}

// precopy sends the rootfs, config, snapshots and saved state while the
// container keeps running, and with memory its memory too, in rounds
// (precopyMemory); meanwhile the target unpacks the rootfs where it will
// create the container (Host.Prepare). A failure leaves the container as
// it was here, and the target's session for the caller to abort (fail).
func (mg *migration) precopy(ctx context.Context, memory bool) error {
	mg.phase("precopy")
	err := mg.packAndSend(ctx)
	var prepared chan error
	if err == nil {
		prepared = make(chan error, 1)
		args := PrepareArgs{Token: mg.token, Rootfs: mg.rootfs}
		go func() { prepared <- mg.call("Host.Prepare", args, new(bool)) }()
	}
	if err == nil && memory {
		err = mg.precopyMemory(ctx)
	}
	if prepared != nil {
		// A target that could not unpack ahead (or does not know how)
		// unpacks the whole rootfs at the handover instead.
		if perr := <-prepared; errors.Is(perr, ops.ErrUnreachable) && err == nil {
			err = perr
		} else if perr != nil {
			mg.c.cfg.Log.Warn("cluster: the target did not unpack the rootfs ahead; it does at the handover", "container", mg.o.Name(), "err", perr)
		}
	}
	mg.precopied = time.Since(mg.start)
	return err
}

// freeze checkpoints a live move's container and holds it (with the last
// memory precopy as reference): from here it is down. A failed
// checkpoint leaves it running here as before the move (cancel); what
// follows, sendFrozen, fails with the container to resume here (fail).
func (mg *migration) freeze(ctx context.Context) error {
	mg.phase("freeze")
	mg.frozeAt = time.Now()
	if err := mg.checkpointOverPreDumps(ctx); err != nil {
		return err
	}
	mg.timings = append(mg.timings, seconds("freeze-checkpoint-seconds", time.Since(mg.frozeAt)))
	for _, k := range []string{"criu-frozen-seconds", "dump-seconds", "store-seconds", "criu-pages-written"} {
		mg.timings = append(mg.timings, ops.KeyValue{Key: "freeze-" + k, Value: mg.o.Reported(k)})
	}
	return nil
}

// handover has the target apply the rootfs changes to what it unpacked,
// create the container and, if it ran, restore it (from pageServer's
// memory, for a post-copy move), as a provisional copy: the source's copy
// is still the container. An error the target answers means it has no
// copy; a broken connection leaves unknown whether it installed one
// (unknownOutcome finds out).
func (mg *migration) handover(ctx context.Context, pageServer string) error {
	mg.phase("handover")
	mg.stopRenewing()
	t := time.Now()
	err := mg.call("Host.Install", InstallArgs{Token: mg.token, Rootfs: mg.rootfs, Items: mg.items, Start: mg.live, PageServer: pageServer}, new(bool))
	mg.handedOver = time.Since(t)
	return err
}

// commit has the target keep its copy, then removes the one here and
// reports the move. If the commit fails (its answer lost, the session
// gone), the target is asked who owns the container (unknownOutcome): the
// move succeeded if the target kept its copy; otherwise the copy there is
// aborted and the container restored here, and the error says so.
func (mg *migration) commit(ctx context.Context) error {
	downtime := mg.downtime()
	// The report is what the target's info shows; the target adds the
	// time its commit (the unfreeze) takes, and so does this host below.
	report := mg.report(time.Since(mg.start), downtime)
	mg.phase("commit")
	committing := time.Now()
	if err := mg.call("Host.Commit", CommitArgs{Token: mg.token, Report: report}, new(bool)); err != nil {
		if err := mg.unknownOutcome(ctx, err, mg.live); err != nil {
			return err
		}
	}
	mg.done(downtime, time.Since(committing))
	return nil
}

// downtime is how long the container has been down so far: since the
// freeze of a live move, none for a cold one.
func (mg *migration) downtime() time.Duration {
	if mg.live {
		return time.Since(mg.frozeAt)
	}
	return 0
}

// done ends a move the target has committed, commit taking that long of
// it: the copy here goes and the move is reported. A move whose handover
// answer was lost but whose target kept the container ends here too, or
// the container would stay on both hosts until the next start.
func (mg *migration) done(downtime, commit time.Duration) {
	total := time.Since(mg.start)
	report := mg.report(total-commit, downtime)
	addSeconds(report, commit, "move-seconds")
	if mg.live {
		downtime += commit
		addSeconds(report, commit, "downtime-seconds")
	}
	mg.moved(report, downtime)
	mg.c.cfg.Log.Info("cluster: moved", "container", mg.j.Name, "to", mg.peer.Name, "live", mg.live,
		"seconds", total.Seconds(), "downtime", downtime.Seconds(), "sent", mg.sent)
}

// report is a pre-copy move's figures for info, up to the commit.
func (mg *migration) report(total, downtime time.Duration) []ops.KeyValue {
	report := []ops.KeyValue{
		{Key: "moved-from", Value: mg.c.cfg.Host},
		{Key: "move-mode", Value: map[bool]string{true: "live", false: "cold"}[mg.live]},
		{Key: "move-rootfs", Value: mg.o.RootfsTransfer()},
		seconds("move-seconds", total),
		seconds("precopy-seconds", mg.precopied),
		{Key: "precopy-rounds", Value: fmt.Sprint(mg.rounds)},
		seconds("precopy-frozen-seconds", mg.o.PrecopyFrozen),
		seconds("downtime-seconds", downtime),
		{Key: "move-sent-bytes", Value: fmt.Sprint(mg.sent)},
	}
	report = append(report, mg.memory.keyValues()...)
	if mg.live {
		report = append(report, ops.KeyValue{Key: "freeze-sent-bytes", Value: fmt.Sprint(mg.frozenSent)})
	}
	report = append(report, mg.timings...)
	return append(report, seconds("handover-seconds", mg.handedOver))
}

// moved ends a move whose target has committed: the copy here goes, then
// the journal; info gets the report (moved-to first, instead of
// moved-from) and events the downtime.
func (mg *migration) moved(report []ops.KeyValue, downtime time.Duration) {
	c, o := mg.c, mg.o
	if err := o.Remove(); err != nil {
		c.cfg.Log.Error("cluster: moved, but the local copy could not be removed", "container", mg.j.Name, "err", err)
	}
	os.Remove(c.journalPath(mg.j.Name))
	o.Report("moved-to", mg.peer.Name)
	for _, kv := range report[1:] {
		o.Report(kv.Key, kv.Value)
	}
	c.mv.PublishEvent(mg.j.Name, "move-downtime", "ok", downtime)
}

func (mg *migration) call(method string, args, reply any) error {
	return transport.CallError(mg.peer.Name, mg.client.Call(method, args, reply))
}

// abort drops the target's session. If the connection is broken it keeps
// trying on new ones in the background for as long as the target would
// keep the session, so that the name is free there again soon.
func (mg *migration) abort(ctx context.Context) {
	if mg.client.Call("Host.Abort", mg.token, new(bool)) == nil {
		return
	}
	endpoint, token := mg.peer.Meta.Endpoint, mg.token
	ctx, cancel := context.WithTimeout(ctx, sessionIdle)
	go func() {
		defer cancel()
		for ; ctx.Err() == nil; time.Sleep(2 * time.Second) {
			if mg.c.callEndpoint(endpoint, "Host.Abort", token, new(bool)) == nil {
				return
			}
		}
	}()
}

// fail ends a migration that failed before commit: the target's copy is
// aborted and, if the container ran, its held processes here run on. The
// journal goes only then: the next daemon resumes them from the journal.
func (mg *migration) fail(ctx context.Context, err error, checkpointed bool) error {
	mg.abort(ctx)
	err = mg.failed(ctx, err, checkpointed)
	os.Remove(mg.c.journalPath(mg.j.Name))
	return err
}

// cancel ends a move that failed while the container still runs here as
// before it: the target's session is aborted and the journal goes. The
// error is the failure's own (a failed checkpoint's, say).
func (mg *migration) cancel(ctx context.Context, err error) error {
	mg.abort(ctx)
	os.Remove(mg.c.journalPath(mg.j.Name))
	return err
}

// unknownOutcome settles a handover or commit whose answer was lost: nil
// if the target owns the container now (the caller removes the copy
// here), else the container is restored here.
func (mg *migration) unknownOutcome(ctx context.Context, err error, checkpointed bool) error {
	switch mg.c.settle(ctx, mg.j) {
	case ownerCommitted:
		return nil
	case ownerPending:
		mg.abort(ctx)
	}
	err = mg.failed(ctx, err, checkpointed) // before the journal goes: see fail
	os.Remove(mg.c.journalPath(mg.j.Name))
	return err
}

func (mg *migration) failed(ctx context.Context, err error, checkpointed bool) error {
	msg := fmt.Sprintf("move of %s to %s failed: %v", mg.o.Name(), mg.peer.Name, err)
	if checkpointed {
		if rerr := mg.o.Resume(ctx); rerr != nil {
			return ops.NewError(ops.ErrFailed, msg+fmt.Sprintf("; resuming it here failed too (%v)", rerr))
		}
		msg += "; it is RUNNING here again, its processes untouched"
	} else {
		msg += "; it is still here"
	}
	if errors.Is(err, ops.ErrUnreachable) {
		return ops.NewError(ops.ErrUnreachable, msg)
	}
	return ops.NewError(ops.ErrFailed, msg)
}

// canHoldMap refuses an unprivileged container to a target whose root
// has no range over its id map (EOPNOTSUPP, members.CanHold): it keeps its
// map and its rootfs's owners there.
func (mg *migration) canHoldMap(target Facts) error {
	im, ok, err := mg.o.IDMap()
	if err != nil || !ok {
		return err
	}
	if err := members.CanHold(target, im); err != nil {
		return ops.NewError(ops.ErrUnsupported, fmt.Sprintf("%s cannot take %s: %v", mg.peer.Name, mg.o.Name(), err))
	}
	return nil
}
