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
// meanwhile it answers the others that they are taken (AddressHeld).
type addressClaims struct {
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
func (m *Manager) allocateAddress(name string) (addr netip.Addr, release func(), err error) {
	for try := 0; ; try++ {
		busy := false
		addr, err = m.cfg.Network.AllocateAddressWith(m.cfg.LXCPath, m.cfg.Host, name, func(a netip.Addr) (bool, error) {
			err := m.claimAddress(a)
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
			return addr, func() { m.dropPending(addr) }, nil
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

// claimAddress marks a as pending here, then asks the cluster: nil leaves
// it pending, an error does not.
func (m *Manager) claimAddress(a netip.Addr) error {
	m.claims.mu.Lock()
	if m.claims.pending[a] {
		m.claims.mu.Unlock()
		return newError(ErrBusy, fmt.Sprintf("address %s is being claimed here", a), nil)
	}
	// The walk read the LXC path before; a container may have arrived
	// with this address since (a move's handover).
	if used, err := network.UsedAddresses(m.cfg.LXCPath); err != nil || used[a] {
		m.claims.mu.Unlock()
		if err != nil {
			return newError(ErrFailed, "read the addresses in use", err)
		}
		return newError(ErrExists, fmt.Sprintf("address %s is in use here", a), nil)
	}
	if m.claims.pending == nil {
		m.claims.pending = map[netip.Addr]bool{}
	}
	m.claims.pending[a] = true
	claimer := m.claims.claimer
	m.claims.mu.Unlock()
	if claimer == nil {
		return nil
	}
	if err := claimer.ClaimAddress(a); err != nil {
		m.dropPending(a)
		return err
	}
	return nil
}

func (m *Manager) dropPending(a netip.Addr) {
	m.claims.mu.Lock()
	delete(m.claims.pending, a)
	m.claims.mu.Unlock()
}

// AddressHeld answers another host's claim: ErrExists if a container here
// has the address in its config (one being created or arriving
// included), ErrBusy if this host is claiming it, nil if it is free here.
func (m *Manager) AddressHeld(a netip.Addr) error {
	m.claims.mu.Lock()
	defer m.claims.mu.Unlock()
	if m.claims.pending[a] {
		return newError(ErrBusy, fmt.Sprintf("host %s is claiming address %s", m.cfg.Host, a), nil)
	}
	used, err := network.UsedAddresses(m.cfg.LXCPath)
	if err != nil {
		return newError(ErrFailed, "read the addresses in use", err)
	}
	if used[a] {
		return newError(ErrExists, fmt.Sprintf("address %s is in use on host %s", a, m.cfg.Host), nil)
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
func (m *Manager) Addresses() (held, claiming []netip.Addr, err error) {
	m.claims.mu.Lock()
	defer m.claims.mu.Unlock()
	used, err := network.UsedAddresses(m.cfg.LXCPath)
	if err != nil {
		return nil, nil, newError(ErrFailed, "read the addresses in use", err)
	}
	for a := range used {
		held = append(held, a)
	}
	for a := range m.claims.pending {
		if !used[a] {
			claiming = append(claiming, a)
		}
	}
	return held, claiming, nil
}
