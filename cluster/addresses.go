package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"ctrfs/ops"
)

// Container addresses are unique in the cluster: a host that creates a
// container claims the address of the first candidate free in its own LXC
// path from every other host it can reach (Cluster.ClaimAddress), holding
// it as pending meanwhile (ops/addresses.go). A host answers that an
// address is taken if one of its containers' configs holds it, busy if it
// is claiming it itself. Two hosts that claim one address at once are
// both refused (each asks the other after marking it pending), so no two
// can take one address; both walk on, and the walks start at different
// places. A moved container keeps its config, and with it its address:
// the target holds it from the handover, the source until the commit, so
// the claim follows the container with no gap.
//
// Each host keeps, per peer, the addresses the peer last said it holds
// and those it was granted since (STORE/cluster/addresses/PEER), and a
// claim counts them for a peer that cannot answer: dead in gossip, or
// gone from it (a host that left still has its containers), both at the
// claimant and at the peers it asks. A peer that
// gossip has alive or suspect must answer, else the create fails with
// EHOSTUNREACH; once gossip has it dead (seconds), creates go on without
// it and avoid what it last held. Its addresses stay reserved until it
// answers again; the file of a host that is gone for good may be removed.

// ClaimArgs ask a peer whether From may take Addr.
type ClaimArgs struct{ Addr, From string }

// ClaimReply is the peer's answer: Verdict is "" (granted), "exists" or
// "busy"; Addresses are all the peer holds, for the claimant to keep.
type ClaimReply struct {
	Verdict   string
	Addresses []string
}

// claimTimeout bounds one peer's answer to a claim.
const claimTimeout = 15 * time.Second

// ClaimAddress answers a peer's claim (see above).
func (s *Service) ClaimAddress(a ClaimArgs, out *ClaimReply) error {
	addr, err := netip.ParseAddr(a.Addr)
	if err != nil {
		return wireError(ops.NewError(ops.ErrInvalid, "claim of a bad address: "+err.Error()))
	}
	if err := ops.ValidateName(a.From); err != nil || a.From == s.c.cfg.Host {
		return wireError(ops.NewError(ops.ErrInvalid, fmt.Sprintf("claim from a bad host name %q", a.From)))
	}
	held := s.c.m.AddressHeld(addr)
	if held == nil {
		// What this host knows of a peer that does not answer counts
		// too: the claimant may have met the cluster after it died.
		if h := s.c.peerAddrs.holder(addr, s.c.answering(a.From)); h != "" {
			held = ops.NewError(ops.ErrExists, fmt.Sprintf("address %s was host %s's when it last answered", addr, h))
		}
	}
	switch {
	case held == nil:
		// Kept now: if From dies before it answers again, the address
		// is still its.
		s.c.peerAddrs.add(a.From, addr, s.c.cfg.Log)
	case errors.Is(held, ops.ErrExists):
		out.Verdict = "exists"
	case errors.Is(held, ops.ErrBusy):
		out.Verdict = "busy"
	default:
		return wireError(held)
	}
	mine, err := s.c.m.Addresses()
	if err != nil {
		return wireError(err)
	}
	for _, m := range mine {
		out.Addresses = append(out.Addresses, m.String())
	}
	return nil
}

// ClaimAddress implements ops.AddressClaimer: every peer that gossip does
// not have dead must grant addr; for the others, what this host knows of
// them must not hold it.
func (c *Cluster) ClaimAddress(addr netip.Addr) error {
	answered := map[string]bool{c.cfg.Host: true}
	for _, p := range c.Peers() {
		if p.Status == "dead" {
			continue
		}
		reply, err := c.askClaim(p.Name, addr)
		if err != nil {
			return ops.NewError(ops.ErrUnreachable, fmt.Sprintf("host %s did not answer the claim of address %s (%v): try again, or once gossip has it dead", p.Name, addr, err))
		}
		answered[p.Name] = true
		c.peerAddrs.set(p.Name, reply.Addresses, c.cfg.Log)
		switch reply.Verdict {
		case "exists":
			return ops.NewError(ops.ErrExists, fmt.Sprintf("address %s is in use on host %s", addr, p.Name))
		case "busy":
			return ops.NewError(ops.ErrBusy, fmt.Sprintf("host %s is claiming address %s", p.Name, addr))
		}
	}
	if h := c.peerAddrs.holder(addr, answered); h != "" {
		return ops.NewError(ops.ErrExists, fmt.Sprintf("address %s was host %s's when it last answered", addr, h))
	}
	return nil
}

// answering are the hosts that answer claims themselves: this one, the
// claimant and the peers gossip does not have dead.
func (c *Cluster) answering(claimant string) map[string]bool {
	out := map[string]bool{c.cfg.Host: true, claimant: true}
	for _, p := range c.Peers() {
		if p.Status != "dead" {
			out[p.Name] = true
		}
	}
	return out
}

// askClaim asks one peer, within claimTimeout.
func (c *Cluster) askClaim(peer string, addr netip.Addr) (ClaimReply, error) {
	var reply ClaimReply
	client, _, err := c.connect(peer)
	if err != nil {
		return reply, err
	}
	defer client.Close()
	call := client.Go("Host.ClaimAddress", ClaimArgs{Addr: addr.String(), From: c.cfg.Host}, &reply, nil)
	select {
	case <-call.Done:
		return reply, callError(peer, call.Error)
	case <-time.After(claimTimeout):
		return reply, fmt.Errorf("no answer within %s", claimTimeout)
	}
}

// peerAddresses is what this host knows of the others' addresses, kept
// in a file per peer so that a restart does not forget a dead peer's.
type peerAddresses struct {
	dir string

	once  sync.Once
	mu    sync.Mutex
	hosts map[string]map[netip.Addr]bool
}

// load reads the files, once.
func (k *peerAddresses) load() {
	k.once.Do(func() {
		k.hosts = map[string]map[netip.Addr]bool{}
		entries, _ := os.ReadDir(k.dir)
		for _, e := range entries {
			if ops.ValidateName(e.Name()) != nil {
				continue
			}
			b, err := readStateFile(filepath.Join(k.dir, e.Name()))
			if err != nil {
				continue
			}
			set := map[netip.Addr]bool{}
			for _, f := range strings.Fields(string(b)) {
				if a, err := netip.ParseAddr(f); err == nil {
					set[a] = true
				}
			}
			k.hosts[e.Name()] = set
		}
	})
}

// set replaces what is known of host by what it answered.
func (k *peerAddresses) set(host string, addrs []string, log *slog.Logger) {
	set := map[netip.Addr]bool{}
	for _, f := range addrs {
		if a, err := netip.ParseAddr(f); err == nil {
			set[a] = true
		}
	}
	k.load()
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.hosts[host]; ok && equalSets(old, set) {
		return
	}
	k.hosts[host] = set
	k.save(host, log)
}

// add records an address granted to host.
func (k *peerAddresses) add(host string, a netip.Addr, log *slog.Logger) {
	k.load()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.hosts[host][a] {
		return
	}
	if k.hosts[host] == nil {
		k.hosts[host] = map[netip.Addr]bool{}
	}
	k.hosts[host][a] = true
	k.save(host, log)
}

// holder is a host other than those in skip that is known to hold a.
func (k *peerAddresses) holder(a netip.Addr, skip map[string]bool) string {
	k.load()
	k.mu.Lock()
	defer k.mu.Unlock()
	for h, set := range k.hosts {
		if !skip[h] && set[a] {
			return h
		}
	}
	return ""
}

// save writes host's file; k.mu is held.
func (k *peerAddresses) save(host string, log *slog.Logger) {
	var lines []string
	for a := range k.hosts[host] {
		lines = append(lines, a.String())
	}
	slices.Sort(lines)
	if err := writeStateFile(filepath.Join(k.dir, host), []byte(strings.Join(lines, "\n")+"\n")); err != nil {
		log.Warn("cluster: cannot keep a peer's addresses", "peer", host, "err", err)
	}
}

func equalSets(a, b map[netip.Addr]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for x := range a {
		if !b[x] {
			return false
		}
	}
	return true
}
