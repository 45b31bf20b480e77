package cluster

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"ctrfs/cluster/members"
	"ctrfs/cluster/transport"
	"ctrfs/ops"
)

// evacuateConcurrency is how many containers an evacuation moves at once:
// moves overlap one's CRIU dump with another's transfer, and more would
// only share the same two disks and one link.
const evacuateConcurrency = 3

// stoppedWeight is what a stopped container counts for when containers
// are spread by free memory: it takes none until started, but a host
// should not get every stopped container either.
const stoppedWeight = 32 << 20

// Evacuate moves every container of this host away, each as Migrate does
// (live if it runs, cold if not): to host, or, if host is "", spread over
// the alive peers that can take them, each going to the peer with the
// most free memory left once the containers already planned for it are
// counted. Up to evacuateConcurrency moves run at once; each adds an
// `evacuate` line to events. It returns when every move has ended, with
// an error naming each that failed: such a container stays here (Migrate
// leaves every container on exactly one host).
func (c *Cluster) Evacuate(host string) error {
	names, err := c.m.List()
	if err != nil {
		return err
	}
	if host == c.cfg.Host {
		return ops.NewError(ops.ErrInvalid, fmt.Sprintf("cannot evacuate %s to itself", host))
	}
	if len(names) == 0 {
		return nil
	}
	plan, err := c.planEvacuation(names, host)
	if err != nil {
		return err
	}

	var mu sync.Mutex
	var failed []string
	sem := make(chan struct{}, evacuateConcurrency)
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func(name, to string) {
			defer func() { <-sem; wg.Done() }()
			start := time.Now()
			var err error
			if to == "" {
				err = ops.NewError(ops.ErrUnsupported, "no alive peer can give it its id map (it is unprivileged)")
			} else {
				err = c.Migrate(name, to)
			}
			result := "ok"
			if err != nil {
				result = "failed"
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s to %s: %v", name, to, err))
				mu.Unlock()
			}
			c.mv.PublishEvent(name, "evacuate", result, time.Since(start))
		}(name, plan[name])
	}
	wg.Wait()
	if len(failed) > 0 {
		sort.Strings(failed)
		return ops.NewError(ops.ErrFailed, fmt.Sprintf("evacuate: %d of %d moves failed (those containers are still here): %s",
			len(failed), len(names), strings.Join(failed, "; ")))
	}
	return nil
}

// planEvacuation says where each container goes: all to host if named,
// else by free memory over the alive peers that answer and can restore
// what this host dumps.
func (c *Cluster) planEvacuation(names []string, host string) (map[string]string, error) {
	plan := map[string]string{}
	if host != "" {
		if _, _, err := c.peerFacts(host); err != nil {
			return nil, err
		}
		for _, n := range names {
			plan[n] = host
		}
		return plan, nil
	}
	free := map[string]int64{}
	facts := map[string]Facts{}
	var refused []string
	for _, p := range c.Peers() {
		if p.Status != "alive" {
			continue
		}
		f, _, err := c.peerFacts(p.Name)
		if err != nil {
			refused = append(refused, err.Error())
			continue
		}
		free[p.Name] = f.MemAvailable
		facts[p.Name] = f
	}
	if len(free) == 0 {
		msg := "evacuate: no alive peer to move the containers to"
		if len(refused) > 0 {
			msg += ": " + strings.Join(refused, "; ")
		}
		return nil, ops.NewError(ops.ErrUnreachable, msg)
	}
	weight := map[string]int64{}
	for _, n := range names {
		weight[n] = c.memoryOf(n)
	}
	// An unprivileged container goes only to a peer that can give it its
	// map (the move's check would refuse the others); one that none can
	// is planned nowhere, and fails with that reason.
	fits := func(name, host string) bool {
		im, unprivileged, err := c.mv.IDMap(name)
		return err == nil && (!unprivileged || members.CanHold(facts[host], im) == nil)
	}
	return spread(names, weight, free, fits), nil
}

// spread places containers by weight on hosts by free memory: the
// heaviest first, each on the host with the most left (by name on a tie)
// among those it fits; "" if it fits none.
func spread(names []string, weight, free map[string]int64, fits func(name, host string) bool) map[string]string {
	left := map[string]int64{}
	for h, f := range free {
		left[h] = f
	}
	order := append([]string(nil), names...)
	sort.SliceStable(order, func(i, j int) bool { return weight[order[i]] > weight[order[j]] })
	plan := map[string]string{}
	for _, n := range order {
		best := ""
		for h, f := range left {
			if fits(n, h) && (best == "" || f > left[best] || f == left[best] && h < best) {
				best = h
			}
		}
		plan[n] = best
		if best != "" {
			left[best] -= weight[n]
		}
	}
	return plan
}

// peerFacts asks a peer for its facts and checks it can take this host's
// containers.
func (c *Cluster) peerFacts(host string) (Facts, Peer, error) {
	client, p, err := c.connect(host)
	if err != nil {
		return Facts{}, p, err
	}
	defer client.Close()
	var f Facts
	if err := transport.CallError(host, client.Call("Host.Facts", true, &f)); err != nil {
		return Facts{}, p, err
	}
	if err := members.CanTake(c.facts, f); err != nil {
		return Facts{}, p, ops.NewError(ops.ErrUnsupported, fmt.Sprintf("%s cannot take this host's containers: %v", host, err))
	}
	return f, p, nil
}

// memoryOf is what a container weighs when spread by free memory: what
// it uses if it runs, stoppedWeight if not.
func (c *Cluster) memoryOf(name string) int64 {
	if b, err := c.m.MemoryUsage(name); err == nil && b > 0 {
		return b
	}
	return stoppedWeight
}
