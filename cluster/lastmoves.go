package cluster

import (
	"ctrfs/ops"
)

// watchMoves keeps lastMoves to the containers that are here: the target
// of a move matters only for the bug report of a container whose move
// failed, and one that moved away (or was destroyed) takes its entry with
// it, so that the map does not keep every name this host ever moved.
func (c *Cluster) watchMoves() {
	c.moveWatch = c.m.Events().Subscribe()
	go func(sub *ops.Subscription) {
		for {
			ev, ok := sub.Next(c.cfg.Context)
			if !ok {
				return
			}
			c.forgetMoveIfGone(ev.Container)
		}
	}(c.moveWatch)
}

// forgetMoveIfGone drops the last move of name if no container has that
// name here.
func (c *Cluster) forgetMoveIfGone(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.lastMoves[name]; ok && !c.m.Exists(name) {
		delete(c.lastMoves, name)
	}
}
