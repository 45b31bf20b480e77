package ops

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"ctrfs/ops/network"
)

// AddressClaimer asks the other hosts of the cluster whether this host
// may take an address for a new container (cluster.Cluster is one): nil
// if every host that must answer let it, an ErrExists error if a host
// holds it, an ErrBusy one if a host is claiming it at this moment, any
// other error if the claim could not be made.
type AddressClaimer interface {
	ClaimAddress(addr netip.Addr) error
}

// addressClaims are the addresses this host is claiming, from the moment
// it asks the others until the new config holding the address is written:
// meanwhile it answers the others that they are taken (AddressHeld). It
// reads the addresses in use from the LXC path's configs, and asks the
// other hosts through the claimer; it knows nothing of the cluster or of
// creates.
type addressClaims struct {
	host    string
	lxcPath string
	network network.Network

	mu      sync.Mutex
	claimer AddressClaimer
	pending map[netip.Addr]bool
}

// SetAddressClaimer makes new containers' addresses claimed through c
// as well as free in the LXC path. Set before the tree is served.
func (m *Manager) SetAddressClaimer(c AddressClaimer) {
	m.claims.mu.Lock()
	m.claims.claimer = c
	m.claims.mu.Unlock()
}

// claimRetries is how often a create walks the subnet again when every
// free address it found was being claimed by another host: such claims
// end within a round of questions, and the random pause keeps two hosts
// from meeting on the same address again.
const claimRetries = 8

// allocateAddress picks the new container's address and holds it as
// pending until release is called, once the config that holds it is
// written (or the create has failed). createMu is held.
func (c *addressClaims) allocate(name string) (addr netip.Addr, release func(), err error) {
	for try := 0; ; try++ {
		busy := false
		addr, err = c.network.AllocateAddressWith(c.lxcPath, c.host, name, func(a netip.Addr) (bool, error) {
			err := c.claim(a)
			switch {
			case err == nil:
				return true, nil
			case errors.Is(err, ErrBusy):
				busy = true
				return false, nil
			case errors.Is(err, ErrExists):
				return false, nil
			default:
				return false, err
			}
		})
		if err == nil {
			return addr, func() { c.dropPending(addr) }, nil
		}
		if !busy {
			return addr, nil, err
		}
		if try == claimRetries {
			return addr, nil, newError(ErrBusy, "every free address was being claimed by another host; try again", err)
		}
		time.Sleep(time.Duration(20+rand.IntN(200)) * time.Millisecond)
	}
}

// claim marks a as pending here, then asks the cluster: nil leaves it
// pending, an error does not.
func (c *addressClaims) claim(a netip.Addr) error {
	c.mu.Lock()
	if c.pending[a] {
		c.mu.Unlock()
		return newError(ErrBusy, fmt.Sprintf("address %s is being claimed here", a), nil)
	}
	// The walk read the LXC path before; a container may have arrived
	// with this address since (a move's handover).
	if used, err := network.UsedAddresses(c.lxcPath); err != nil || used[a] {
		c.mu.Unlock()
		if err != nil {
			return newError(ErrFailed, "read the addresses in use", err)
		}
		return newError(ErrExists, fmt.Sprintf("address %s is in use here", a), nil)
	}
	if c.pending == nil {
		c.pending = map[netip.Addr]bool{}
	}
	c.pending[a] = true
	claimer := c.claimer
	c.mu.Unlock()
	if claimer == nil {
		return nil
	}
	if err := claimer.ClaimAddress(a); err != nil {
		c.dropPending(a)
		return err
	}
	return nil
}

func (c *addressClaims) dropPending(a netip.Addr) {
	c.mu.Lock()
	delete(c.pending, a)
	c.mu.Unlock()
}

// AddressHeld answers another host's claim: ErrExists if a container here
// has the address in its config (one being created or arriving
// included), ErrBusy if this host is claiming it, nil if it is free here.
func (m *Manager) AddressHeld(a netip.Addr) error { return m.claims.held(a) }

func (c *addressClaims) held(a netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[a] {
		return newError(ErrBusy, fmt.Sprintf("host %s is claiming address %s", c.host, a), nil)
	}
	used, err := network.UsedAddresses(c.lxcPath)
	if err != nil {
		return newError(ErrFailed, "read the addresses in use", err)
	}
	if used[a] {
		return newError(ErrExists, fmt.Sprintf("address %s is in use on host %s", a, c.host), nil)
	}
	return nil
}

// Addresses are the addresses this host's containers hold, and apart
// those it is claiming: what the others keep of it for when it does not
// answer. A claim is apart because it may yet fail: a peer keeps it only
// if it granted it (and so is told when it fails), never from an answer
// alone, else a claim that failed would stay reserved for a host that
// then died. Both are read at once, so that a claim that ends meanwhile
// is in one or the other.
func (m *Manager) Addresses() (held, claiming []netip.Addr, err error) { return m.claims.list() }

func (c *addressClaims) list() (held, claiming []netip.Addr, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	used, err := network.UsedAddresses(c.lxcPath)
	if err != nil {
		return nil, nil, newError(ErrFailed, "read the addresses in use", err)
	}
	for a := range used {
		held = append(held, a)
	}
	for a := range c.pending {
		if !used[a] {
			claiming = append(claiming, a)
		}
	}
	return held, claiming, nil
}
