package cluster

import (
	"errors"
	"fmt"
	"net/rpc"
	"os"
	"time"

	"ctrfs/ops"
)

// Migrate moves a container to another host: live if it runs, cold if it
// is stopped. Its phases, and what a failure in each leaves:
//   - check: the target proves the secret and is compared with this host
//     (EOPNOTSUPP if it cannot restore what this host dumps); the name is
//     reserved there (EEXIST if taken). Nothing has moved.
//   - precopy: rootfs, config, snapshots and saved state go while the
//     container keeps running; only chunks the target lacks are sent. The
//     target unpacks the rootfs where it will create the container, while
//     the memory precopy goes on.
//   - freeze (live): stop-stateful, then what changed in the rootfs since
//     and the state; again only what the target lacks. From here the
//     container is down.
//   - handover: the target applies the changes to the rootfs it unpacked,
//     creates the container and restores it, as a provisional copy.
//   - commit: the target keeps it; this host removes its copy.
//
// Until commit this host's copy is the container: any failure before it
// aborts the target's copy and restores this one, so the container ends
// RUNNING on exactly one host. A journal on disk lets a restarted daemon
// settle a migration it was killed in.
func (c *Cluster) Migrate(name, host string) error {
	return c.migrate(name, host, c.cfg.PostCopyMoves)
}

// MigratePostCopy is Migrate of a running container with CRIU's lazy
// pages (post-copy): see postcopy.go.
func (c *Cluster) MigratePostCopy(name, host string) error {
	return c.migrate(name, host, true)
}

func (c *Cluster) migrate(name, host string, postCopy bool) error {
	c.mu.Lock()
	c.lastMoves[name] = host
	c.mu.Unlock()
	return c.m.Move(name, "move", func(o *ops.Outgoing) error {
		if host == c.cfg.Host {
			return ops.NewError(ops.ErrInvalid, fmt.Sprintf("%s is already on %s", name, host))
		}
		if err := ops.ValidateName(host); err != nil {
			return err
		}
		return c.moveOut(o, host, postCopy)
	})
}

// migration is one container leaving, with its connection to the target.
type migration struct {
	c      *Cluster
	o      *ops.Outgoing
	client *rpc.Client
	peer   Peer
	token  string
	sent   int64 // compressed bytes sent
	rounds int   // memory precopy rounds
	start  time.Time
	packed time.Duration // sendFrozen's archiving of the rootfs changes (beside the memory's chunks)
}

// phase starts a phase of the move: `info` shows it (ops.Outgoing.Phase)
// and `events` gets a line `move-PHASE started SECONDS`, the seconds
// since the move began.
func (mg *migration) phase(name string) {
	mg.o.Phase(name)
	mg.c.m.PublishEvent(mg.o.Name(), "move-"+name, "started", time.Since(mg.start))
}

func (c *Cluster) moveOut(o *ops.Outgoing, host string, postCopy bool) error {
	start := time.Now()
	client, peer, err := c.connect(host)
	if err != nil {
		return err
	}
	defer client.Close()
	mg := &migration{c: c, o: o, client: client, peer: peer, start: start}

	mg.phase("check")
	var facts Facts
	if err := mg.call("Host.Facts", true, &facts); err != nil {
		return err
	}
	if err := CanTake(c.facts, facts); err != nil {
		return ops.NewError(ops.ErrUnsupported, fmt.Sprintf("%s cannot take %s: %v", host, o.Name(), err))
	}
	status, err := o.Status()
	if err != nil {
		return err
	}
	if status == "FROZEN" {
		return ops.NewError(ops.ErrBusy, fmt.Sprintf("cannot move %s: it is FROZEN", o.Name()))
	}
	live := status == "RUNNING"
	if live && postCopy {
		// Refused before anything moves: see postcopy.go.
		if err := mg.canPostCopy(); err != nil {
			return err
		}
	}
	if err := mg.call("Host.Begin", BeginArgs{Name: o.Name(), Source: c.cfg.Host}, &mg.token); err != nil {
		return err
	}
	j := journal{Name: o.Name(), Target: host, Endpoint: peer.Meta.Endpoint, Token: mg.token, Live: live}
	if err := c.writeJournal(j); err != nil {
		mg.abort()
		return ops.NewError(ops.ErrFailed, "write migration journal: "+err.Error())
	}
	defer o.Forget()

	mg.phase("precopy")
	rootfs, items, err := mg.packAndSend()
	var prepared chan error
	if err == nil {
		prepared = make(chan error, 1)
		go func() { prepared <- mg.call("Host.Prepare", PrepareArgs{Token: mg.token, Rootfs: rootfs}, new(bool)) }()
	}
	if err == nil && live && !postCopy {
		err = mg.precopyMemory()
	}
	if prepared != nil {
		// A target that could not unpack ahead (or does not know how)
		// unpacks the whole rootfs at the handover instead.
		if perr := <-prepared; errors.Is(perr, ops.ErrUnreachable) && err == nil {
			err = perr
		} else if perr != nil {
			c.cfg.Log.Warn("cluster: the target did not unpack the rootfs ahead; it does at the handover", "container", o.Name(), "err", perr)
		}
	}
	if err != nil {
		return mg.fail(j, err, false)
	}
	precopy := time.Since(start)
	if live && postCopy {
		return mg.postCopy(j, precopy)
	}

	// freeze
	var frozeAt time.Time
	var phases []ops.KeyValue // how the downtime was spent
	phaseDone := func(key string, since time.Time) time.Time {
		phases = append(phases, seconds(key, time.Since(since)))
		return time.Now()
	}
	if live {
		mg.phase("freeze")
		frozeAt = time.Now()
		if err := o.Checkpoint(); err != nil {
			mg.abort()
			os.Remove(c.journalPath(j.Name))
			return err // the container still runs here
		}
		t := phaseDone("freeze-checkpoint-seconds", frozeAt)
		for _, k := range []string{"criu-frozen-seconds", "dump-seconds", "store-seconds"} {
			phases = append(phases, ops.KeyValue{Key: "freeze-" + k, Value: o.Reported(k)})
		}
		if rootfs, items, err = mg.sendFrozen(); err != nil {
			return mg.fail(j, err, true)
		}
		phaseDone("freeze-send-seconds", t)
		phases = append(phases, seconds("freeze-pack-seconds", mg.packed))
	}

	mg.phase("handover")
	handover := time.Now()
	err = mg.call("Host.Install", InstallArgs{Token: mg.token, Rootfs: rootfs, Items: items, Start: live}, new(bool))
	phaseDone("handover-seconds", handover)
	if errors.Is(err, ops.ErrUnreachable) {
		// The connection broke: the target may have finished installing.
		return mg.unknownOutcome(j, err, live)
	}
	if err != nil {
		return mg.fail(j, err, live)
	}
	downtime := time.Duration(0)
	if live {
		downtime = time.Since(frozeAt)
	}

	// commit: the report is what the target's info shows; the target adds
	// the time its commit (the unfreeze) takes, and so does this host below.
	total := time.Since(start)
	report := []ops.KeyValue{
		{Key: "moved-from", Value: c.cfg.Host},
		{Key: "move-mode", Value: map[bool]string{true: "live", false: "cold"}[live]},
		{Key: "move-seconds", Value: fmt.Sprintf("%.3f", total.Seconds())},
		{Key: "precopy-seconds", Value: fmt.Sprintf("%.3f", precopy.Seconds())},
		{Key: "precopy-rounds", Value: fmt.Sprint(mg.rounds)},
		{Key: "precopy-frozen-seconds", Value: fmt.Sprintf("%.3f", o.PrecopyFrozen.Seconds())},
		{Key: "downtime-seconds", Value: fmt.Sprintf("%.3f", downtime.Seconds())},
		{Key: "move-sent-bytes", Value: fmt.Sprint(mg.sent)},
	}
	report = append(report, phases...)
	mg.phase("commit")
	committing := time.Now()
	if err := mg.call("Host.Commit", CommitArgs{Token: mg.token, Report: report}, new(bool)); err != nil {
		if err := mg.unknownOutcome(j, err, live); err != nil {
			return err
		}
	}
	commit := time.Since(committing)
	total += commit
	addSeconds(report, commit, "move-seconds")
	if live {
		downtime += commit
		addSeconds(report, commit, "downtime-seconds")
	}
	if err := o.Remove(); err != nil {
		c.cfg.Log.Error("cluster: moved, but the local copy could not be removed", "container", j.Name, "err", err)
	}
	os.Remove(c.journalPath(j.Name))

	o.Report("moved-to", host)
	for _, kv := range report[1:] {
		o.Report(kv.Key, kv.Value)
	}
	c.m.PublishEvent(j.Name, "move-downtime", "ok", downtime)
	c.cfg.Log.Info("cluster: moved", "container", j.Name, "to", host, "live", live,
		"seconds", total.Seconds(), "downtime", downtime.Seconds(), "sent", mg.sent)
	return nil
}

func (mg *migration) call(method string, args, reply any) error {
	return callError(mg.peer.Name, mg.client.Call(method, args, reply))
}

// abort drops the target's session. If the connection is broken it keeps
// trying on new ones in the background for as long as the target would
// keep the session, so that the name is free there again soon.
func (mg *migration) abort() {
	if mg.client.Call("Host.Abort", mg.token, new(bool)) == nil {
		return
	}
	endpoint, token := mg.peer.Meta.Endpoint, mg.token
	go func() {
		for deadline := time.Now().Add(sessionIdle); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
			if mg.c.callEndpoint(endpoint, "Host.Abort", token, new(bool)) == nil {
				return
			}
		}
	}()
}

// fail ends a migration that failed before commit: the target's copy is
// aborted and, if the container ran, it is restored here. The journal
// goes only then: the restore's helper dies with this daemon, and the
// next daemon restores the container from the journal.
func (mg *migration) fail(j journal, err error, checkpointed bool) error {
	mg.abort()
	err = mg.failed(err, checkpointed)
	os.Remove(mg.c.journalPath(j.Name))
	return err
}

// unknownOutcome settles a handover whose answer was lost: nil if the
// target owns the container now (the caller removes the copy here), else
// the container is restored here.
func (mg *migration) unknownOutcome(j journal, err error, checkpointed bool) error {
	switch mg.c.settle(j) {
	case ownerCommitted:
		return nil
	case ownerPending:
		mg.abort()
	}
	err = mg.failed(err, checkpointed) // before the journal goes: see fail
	os.Remove(mg.c.journalPath(j.Name))
	return err
}

func (mg *migration) failed(err error, checkpointed bool) error {
	msg := fmt.Sprintf("move of %s to %s failed: %v", mg.o.Name(), mg.peer.Name, err)
	if checkpointed {
		if rerr := mg.o.Resume(); rerr != nil {
			return ops.NewError(ops.ErrFailed, msg+fmt.Sprintf("; restoring it here failed too (%v): it is STOPPED here with its saved state", rerr))
		}
		msg += "; it is RUNNING here again"
	} else {
		msg += "; it is still here"
	}
	if errors.Is(err, ops.ErrUnreachable) {
		return ops.NewError(ops.ErrUnreachable, msg)
	}
	return ops.NewError(ops.ErrFailed, msg)
}
