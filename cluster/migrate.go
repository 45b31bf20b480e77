package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/rpc"
	"os"
	"path/filepath"
	"sync"
	"time"

	"ctrfs/images"
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

// journal records a migration under way on the source.
type journal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Endpoint string `json:"endpoint"`
	Token    string `json:"token"`
	Live     bool   `json:"live"` // the container ran: it is restored here if the move fails
	// A post-copy move's lazy dump: its image directory, by which its
	// CRIU is found (recoverPostCopy).
	LazyDump string `json:"lazy_dump,omitempty"`
}

func (c *Cluster) journalPath(name string) string {
	return filepath.Join(c.stateDir("outgoing"), name+".json")
}

func (c *Cluster) writeJournal(j journal) error {
	data, _ := json.Marshal(j)
	return writeStateFile(c.journalPath(j.Name), data)
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
// aborted and, if the container ran, it is restored here.
func (mg *migration) fail(j journal, err error, checkpointed bool) error {
	mg.abort()
	os.Remove(mg.c.journalPath(j.Name))
	return mg.failed(err, checkpointed)
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
	os.Remove(mg.c.journalPath(j.Name))
	return mg.failed(err, checkpointed)
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

// precopyMemory sends the memory ahead in rounds of dumps that leave the
// container running, each sending the chunks the target lacks, for as long
// as nextPrecopyRound says; then the final dump sends little.
func (mg *migration) precopyMemory() error {
	var sent []int64
	var last *images.Manifest
	for {
		kind, more := nextPrecopyRound(false, sent)
		if !more {
			return mg.prepareState(last)
		}
		mf, err := mg.o.PrecopyMemory()
		if err != nil {
			return err
		}
		before := mg.sent
		last = mf
		mg.rounds++
		if err := mg.sendChunks(mf.Hashes()); err != nil {
			return err
		}
		sent = append(sent, mg.sent-before)
		mg.c.cfg.Log.Debug("cluster: memory precopy", "container", mg.o.Name(), "round", mg.rounds, "kind", kind, "sent", sent[len(sent)-1])
	}
}

// prepareState has the target unpack the last precopy dump, so that at
// the handover it writes only what the final dump changed and restores
// from there. A target that cannot (or does not know how) restores from
// its store instead: only a broken connection fails the move.
func (mg *migration) prepareState(state *images.Manifest) error {
	if state == nil {
		return nil
	}
	err := mg.call("Host.PrepareState", PrepareStateArgs{Token: mg.token, State: state}, new(bool))
	if err != nil && !errors.Is(err, ops.ErrUnreachable) {
		mg.c.cfg.Log.Warn("cluster: the target did not unpack the state ahead; it restores from its store", "container", mg.o.Name(), "err", err)
		return nil
	}
	return err
}

// packAndSend packs the rootfs and sends it with the saved state and
// snapshots.
func (mg *migration) packAndSend() (*images.Manifest, map[string]*images.Manifest, error) {
	rootfs, err := mg.o.PackRootfs()
	if err != nil {
		return nil, nil, err
	}
	items, err := mg.o.Items()
	if err != nil {
		return nil, nil, err
	}
	return mg.sendContainer(rootfs, items)
}

// sendContainer sends the chunks of rootfs and items that the target
// lacks; then it has them all.
func (mg *migration) sendContainer(rootfs *images.Manifest, items map[string]*images.Manifest) (*images.Manifest, map[string]*images.Manifest, error) {
	seen := map[string]bool{}
	var hashes []string
	for _, mf := range append([]*images.Manifest{rootfs}, values(items)...) {
		for _, h := range mf.Hashes() {
			if !seen[h] {
				seen[h] = true
				hashes = append(hashes, h)
			}
		}
	}
	if err := mg.sendChunks(hashes); err != nil {
		return nil, nil, err
	}
	return rootfs, items, nil
}

// sendFrozen is sendContainer after the freeze: the memory dump's chunks
// go while the rootfs changes are archived, then the rest.
func (mg *migration) sendFrozen() (*images.Manifest, map[string]*images.Manifest, error) {
	items, err := mg.o.Items()
	if err != nil {
		return nil, nil, err
	}
	state := make(chan error, 1)
	go func() {
		if mf := items["state"]; mf != nil {
			state <- mg.sendChunks(mf.Hashes())
			return
		}
		state <- nil
	}()
	t := time.Now()
	rootfs, err := mg.o.PackRootfs()
	mg.packed = time.Since(t)
	if serr := <-state; err == nil {
		err = serr
	}
	if err != nil {
		return nil, nil, err
	}
	return mg.sendContainer(rootfs, items)
}

func values(m map[string]*images.Manifest) []*images.Manifest {
	out := make([]*images.Manifest, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// installSlack bounds how long an install on the target takes.
const installSlack = 30 * time.Second

// Chunks go in batches of about batchBytes, several batches in flight, so
// that reading, the network and the target's writing overlap.
const (
	batchBytes = 8 << 20
	inFlight   = 4
)

func (mg *migration) sendChunks(hashes []string) error {
	var missing []string
	if err := mg.call("Host.Missing", MissingArgs{Token: mg.token, Hashes: hashes}, &missing); err != nil {
		return err
	}
	store := mg.o.Store()
	var expected int64
	for _, h := range missing {
		expected += store.ChunkSize(h)
	}
	mg.o.Sending(expected)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		slots    = make(chan struct{}, inFlight)
	)
	send := func(batch []WireChunk) {
		defer wg.Done()
		defer func() { <-slots }()
		var n int
		err := mg.call("Host.Put", PutArgs{Token: mg.token, Chunks: batch}, &n)
		mu.Lock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		mg.sent += int64(n)
		mu.Unlock()
		mg.o.Sent(int64(n))
		mg.c.sentBytes.Add(int64(n))
	}
	var batch []WireChunk
	size := 0
	for i, h := range missing {
		data, err := store.ReadChunk(h)
		if err != nil {
			wg.Wait()
			return ops.NewError(ops.ErrFailed, fmt.Sprintf("read chunk %s: %v", h, err))
		}
		batch = append(batch, WireChunk{Hash: h, Data: data})
		size += len(data)
		if size >= batchBytes || i == len(missing)-1 {
			slots <- struct{}{}
			mu.Lock()
			failed := firstErr != nil
			mu.Unlock()
			if failed {
				<-slots
				break
			}
			wg.Add(1)
			go send(batch)
			batch, size = nil, 0
		}
	}
	wg.Wait()
	return firstErr
}

// settle finds out from the target who owns a container whose migration
// was interrupted after handover, retrying for as long as the target's
// lease on a provisional copy: a target that stays unreachable that long
// has dropped its copy (or will, when its daemon starts). It returns the
// owner; a provisional copy is committed, since it is running there.
func (c *Cluster) settle(j journal) string {
	// The target's lease runs from the end of its install, which may
	// still be under way: allow for it.
	deadline := time.Now().Add(commitLease + installSlack)
	for {
		owner, err := c.askOwner(j)
		if err == nil {
			if owner == ownerProvisional {
				if err := c.callEndpoint(j.Endpoint, "Host.Commit", CommitArgs{Token: j.Token}, new(bool)); err == nil {
					return ownerCommitted
				}
				// Not committable yet (a post-copy copy still
				// filling, say): ask again, within the lease.
			} else {
				return owner
			}
		}
		if time.Now().After(deadline) {
			return ownerNone
		}
		time.Sleep(time.Second)
	}
}

func (c *Cluster) askOwner(j journal) (string, error) {
	var owner string
	err := c.callEndpoint(j.Endpoint, "Host.Owner", OwnerArgs{Name: j.Name, Token: j.Token}, &owner)
	return owner, err
}

func (c *Cluster) callEndpoint(endpoint, method string, args, reply any) error {
	client, err := dial(endpoint, c.auth)
	if err != nil {
		return err
	}
	defer client.Close()
	return callError(endpoint, client.Call(method, args, reply))
}

// recoverOutgoing settles the migrations a killed daemon left, each in the
// background under the container's lock: if the target owns the
// container the copy here is removed, otherwise the target's is aborted
// and the container is restored here if it ran.
func (c *Cluster) recoverOutgoing() {
	for _, name := range c.journals("outgoing") {
		data, err := readStateFile(c.journalPath(name))
		var j journal
		if err == nil {
			err = json.Unmarshal(data, &j)
		}
		if err != nil || j.Name != name {
			c.cfg.Log.Error("cluster: unreadable migration journal", "file", c.journalPath(name), "err", err)
			continue
		}
		release, err := c.m.Lock(name, "move")
		if err != nil {
			continue
		}
		go func() {
			defer release()
			c.recoverMove(j)
		}()
	}
}

// recoverMove settles a move that this daemon was killed in. Its event is
// "move-recovered" with the usual ok or failed; the log says which host
// kept the container.
func (c *Cluster) recoverMove(j journal) {
	failed := func() { c.m.PublishEvent(j.Name, "move-recovered", "failed", 0) }
	if j.LazyDump != "" {
		owner, err := c.recoverPostCopy(j)
		log := c.cfg.Log.With("container", j.Name, "target", j.Target, "owner", owner)
		if err != nil {
			log.Error("cluster: cannot settle an interrupted post-copy move", "err", err)
			failed()
			return
		}
		log.Warn("cluster: settled an interrupted post-copy move")
		os.Remove(c.journalPath(j.Name))
		c.m.PublishEvent(j.Name, "move-recovered", "ok", 0)
		return
	}
	owner := c.settle(j)
	log := c.cfg.Log.With("container", j.Name, "target", j.Target, "owner", owner)
	if owner == ownerCommitted {
		log.Warn("cluster: an interrupted move had finished on the target; removing the copy here")
		if err := c.m.Remove(j.Name); err != nil {
			log.Error("cluster: cannot remove the moved container's copy here", "err", err)
			failed()
			return
		}
	} else {
		if owner == ownerPending {
			c.callEndpoint(j.Endpoint, "Host.Abort", j.Token, new(bool))
		}
		log.Warn("cluster: an interrupted move did not finish; the container stays here")
		if j.Live {
			if err := c.m.StartLocked(j.Name); err != nil {
				log.Error("cluster: cannot restore the container after an interrupted move", "err", err)
				failed()
				return
			}
		}
	}
	os.Remove(c.journalPath(j.Name))
	c.m.PublishEvent(j.Name, "move-recovered", "ok", 0)
}
