package cluster

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"ctrfs/cluster/statefiles"
	"ctrfs/cluster/transport"
	"ctrfs/ops/testhooks"
)

// A source keeps a journal of each move under way
// (STORE/cluster/outgoing/NAME.json), written once the target has
// reserved the name and removed once the container runs on exactly one
// host. A move whose answer was lost, or whose daemon was killed, is
// settled from it by asking the target who owns the container (settle),
// at once or when the daemon starts again (recoverOutgoing).

// journal records a migration under way on the source.
type journal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Endpoint string `json:"endpoint"`
	Token    string `json:"token"`
	Live     bool   `json:"live"` // the container ran: it runs on here if the move fails
	// A post-copy move's lazy dump: its image directory, by which its
	// CRIU is found (recoverPostCopy).
	LazyDump string `json:"lazy_dump,omitempty"`
}

func (c *Cluster) journalPath(name string) string {
	return filepath.Join(c.stateDir("outgoing"), name+".json")
}

func (c *Cluster) writeJournal(j journal) error {
	data, _ := json.Marshal(j)
	return statefiles.Write(c.journalPath(j.Name), data)
}

// installSlack bounds how long an install on the target takes.
// CTRFS_TEST_INSTALL_SLACK, a test hook, shortens it, as
// CTRFS_TEST_COMMIT_LEASE does the lease.
var installSlack = testhooks.Duration("CTRFS_TEST_INSTALL_SLACK", 30*time.Second)

// settle finds out from the target who owns a container whose migration
// was interrupted after handover, retrying for as long as the target's
// lease on a provisional copy: a target that stays unreachable that long
// has dropped its copy (or will, when its daemon starts). It returns the
// owner; a provisional copy is committed, since it is running there.
func (c *Cluster) settle(ctx context.Context, j journal) string {
	// The target's lease runs from the end of its install, which may
	// still be under way: allow for it.
	ctx, cancel := context.WithTimeout(ctx, commitLease+installSlack)
	defer cancel()
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
		if ctx.Err() != nil {
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
	client, err := transport.Dial(endpoint, c.auth)
	if err != nil {
		return err
	}
	defer client.Close()
	return transport.CallError(endpoint, client.Call(method, args, reply))
}

// recoverOutgoing settles the migrations a killed daemon left, each in the
// background under the container's lock: if the target owns the
// container the copy here is removed, otherwise the target's is aborted
// and the container is restored here if it ran.
func (c *Cluster) recoverOutgoing() {
	ctx := c.opCtx()
	for _, name := range journals(c.stateDir("outgoing"), c.cfg.Log) {
		data, err := statefiles.Read(c.journalPath(name))
		var j journal
		if err == nil {
			err = json.Unmarshal(data, &j)
		}
		if err != nil || j.Name != name {
			c.cfg.Log.Error("cluster: unreadable migration journal", "file", c.journalPath(name), "err", err)
			continue
		}
		release, err := c.mv.Lock(name, "move")
		if err != nil {
			continue
		}
		go func() {
			defer release()
			c.recoverMove(ctx, j)
		}()
	}
}

// recoverMove settles a move that this daemon was killed in. Its event is
// "move-recovered" with the usual ok or failed; the log says which host
// kept the container.
func (c *Cluster) recoverMove(ctx context.Context, j journal) {
	failed := func() { c.mv.PublishEvent(j.Name, "move-recovered", "failed", 0) }
	if j.LazyDump != "" {
		owner, err := c.recoverPostCopy(ctx, j)
		log := c.cfg.Log.With("container", j.Name, "target", j.Target, "owner", owner)
		if err != nil {
			log.Error("cluster: cannot settle an interrupted post-copy move", "err", err)
			failed()
			return
		}
		log.Warn("cluster: settled an interrupted post-copy move")
		os.Remove(c.journalPath(j.Name))
		c.mv.PublishEvent(j.Name, "move-recovered", "ok", 0)
		return
	}
	owner := c.settle(ctx, j)
	log := c.cfg.Log.With("container", j.Name, "target", j.Target, "owner", owner)
	if owner == ownerCommitted {
		log.Warn("cluster: an interrupted move had finished on the target; removing the copy here")
		if err := c.mv.Remove(j.Name); err != nil {
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
			if err := c.mv.StartLocked(ctx, j.Name); err != nil {
				log.Error("cluster: cannot restore the container after an interrupted move", "err", err)
				failed()
				return
			}
		}
	}
	os.Remove(c.journalPath(j.Name))
	c.mv.PublishEvent(j.Name, "move-recovered", "ok", 0)
}
