package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"ctrfs/cluster/transport"
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
//
// A claim that fails (a later peer refuses it or does not answer) is
// withdrawn from the peers that granted it, and a peer keeps the claims
// in an answer only if it granted them: else the address would stay
// reserved for the claimant, which does not hold it, once that host is
// dead, and the subnet would look full with an address free.

// ClaimArgs ask a peer whether From may take Addr.
type ClaimArgs struct{ Addr, From string }

// ClaimReply is the peer's answer: Verdict is "" (granted), "exists" or
// "busy"; Addresses are all the peer's containers hold, for the claimant
// to keep, and Claiming those the peer is claiming, which the claimant
// keeps only if it granted them (peeraddrs.Book.Set).
type ClaimReply struct {
	Verdict   string
	Addresses []string
	Claiming  []string
}

// claimTimeout bounds one peer's answer to a claim.
const claimTimeout = 15 * time.Second

// ClaimAddress answers a peer's claim (see above).
func (s *Service) ClaimAddress(a ClaimArgs, out *ClaimReply) error {
	return s.c.answerClaim(s.c.m, a, out)
}

// addressBook is what a claim asks of the containers here (ops.Manager).
type addressBook interface {
	AddressHeld(netip.Addr) error
	Addresses() (held, claiming []netip.Addr, err error)
}

func (c *Cluster) answerClaim(book addressBook, a ClaimArgs, out *ClaimReply) error {
	addr, err := netip.ParseAddr(a.Addr)
	if err != nil {
		return transport.WireError(ops.NewError(ops.ErrInvalid, "claim of a bad address: "+err.Error()))
	}
	if err := ops.ValidateName(a.From); err != nil || a.From == c.cfg.Host {
		return transport.WireError(ops.NewError(ops.ErrInvalid, fmt.Sprintf("claim from a bad host name %q", a.From)))
	}
	held := book.AddressHeld(addr)
	if held == nil {
		// What this host knows of a peer that does not answer counts
		// too: the claimant may have met the cluster after it died.
		if h := c.peerAddrs.Holder(addr, c.answering(a.From)); h != "" {
			held = ops.NewError(ops.ErrExists, fmt.Sprintf("address %s was host %s's when it last answered", addr, h))
		}
	}
	switch {
	case held == nil:
		// Kept now: if From dies before it answers again, the address
		// is still its.
		c.peerAddrs.Add(a.From, addr, c.cfg.Log)
	case errors.Is(held, ops.ErrExists):
		out.Verdict = "exists"
	case errors.Is(held, ops.ErrBusy):
		out.Verdict = "busy"
	default:
		return transport.WireError(held)
	}
	mine, claiming, err := book.Addresses()
	if err != nil {
		return transport.WireError(err)
	}
	out.Addresses, out.Claiming = addrStrings(mine), addrStrings(claiming)
	return nil
}

// WithdrawClaim is a claimant's word that a claim this host granted
// failed: the address is not From's.
func (s *Service) WithdrawClaim(a ClaimArgs, _ *bool) error {
	addr, err := netip.ParseAddr(a.Addr)
	if err != nil {
		return transport.WireError(ops.NewError(ops.ErrInvalid, "withdrawal of a bad address: "+err.Error()))
	}
	if err := ops.ValidateName(a.From); err != nil || a.From == s.c.cfg.Host {
		return transport.WireError(ops.NewError(ops.ErrInvalid, fmt.Sprintf("withdrawal from a bad host name %q", a.From)))
	}
	s.c.peerAddrs.Drop(a.From, addr, s.c.cfg.Log)
	return nil
}

func addrStrings(addrs []netip.Addr) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// ClaimAddress implements ops.AddressClaimer: every peer that gossip does
// not have dead must grant addr; for the others, what this host knows of
// them must not hold it.
func (c *Cluster) ClaimAddress(addr netip.Addr) error {
	var peers []string
	for _, p := range c.Peers() {
		if p.Status != "dead" {
			peers = append(peers, p.Name)
		}
	}
	return c.claim(addr, peers, c.askClaim, c.withdrawClaim)
}

// claim asks peers in turn; a claim that fails is withdrawn from those
// that granted it before the error is returned, so that the next claim
// (of this address again, perhaps) comes after.
func (c *Cluster) claim(addr netip.Addr, peers []string, ask func(string, netip.Addr) (ClaimReply, error), withdraw func(string, netip.Addr)) (err error) {
	var granted []string
	defer func() {
		if err != nil {
			for _, p := range granted {
				withdraw(p, addr)
			}
		}
	}()
	answered := map[string]bool{c.cfg.Host: true}
	for _, p := range peers {
		since := c.peerAddrs.Mark()
		reply, err := ask(p, addr)
		if err != nil {
			return ops.NewError(ops.ErrUnreachable, fmt.Sprintf("host %s did not answer the claim of address %s (%v): try again, or once gossip has it dead", p, addr, err))
		}
		answered[p] = true
		c.peerAddrs.Set(p, reply.Addresses, reply.Claiming, since, c.cfg.Log)
		switch reply.Verdict {
		case "exists":
			return ops.NewError(ops.ErrExists, fmt.Sprintf("address %s is in use on host %s", addr, p))
		case "busy":
			return ops.NewError(ops.ErrBusy, fmt.Sprintf("host %s is claiming address %s", p, addr))
		}
		granted = append(granted, p)
	}
	if h := c.peerAddrs.Holder(addr, answered); h != "" {
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
		return reply, transport.CallError(peer, call.Error)
	case <-time.After(claimTimeout):
		return reply, fmt.Errorf("no answer within %s", claimTimeout)
	}
}

// withdrawClaim tells a peer that granted addr that the claim failed. A
// peer that does not hear it keeps the address as this host's until it
// next asks this host, which then answers what it holds.
func (c *Cluster) withdrawClaim(peer string, addr netip.Addr) {
	client, _, err := c.connect(peer)
	if err == nil {
		call := client.Go("Host.WithdrawClaim", ClaimArgs{Addr: addr.String(), From: c.cfg.Host}, new(bool), nil)
		select {
		case <-call.Done:
			err = transport.CallError(peer, call.Error)
		case <-time.After(claimTimeout):
			err = fmt.Errorf("no answer within %s", claimTimeout)
		}
		client.Close()
	}
	if err != nil {
		c.cfg.Log.Warn("cluster: cannot withdraw a failed address claim", "peer", peer, "addr", addr, "err", err)
	}
}
