// Package peeraddrs keeps what this host knows of its peers' container
// addresses (STORE/cluster/addresses/PEER): those each peer last said it
// holds and those granted to it here since, which a claim counts for a
// peer that cannot answer. It holds that book and nothing else; it knows
// nothing of who is in the cluster, of the claims' calls or of this
// host's containers (cluster/addresses.go asks and answers the claims).
package peeraddrs

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"ctrfs/cluster/statefiles"
	"ctrfs/ops"
)

// Book is what this host knows of the others' addresses, kept in a file
// per peer so that a restart does not forget a dead peer's. Its zero
// value, given Dir, is ready; it loads the files at its first use.
type Book struct {
	Dir string // STORE/cluster/addresses

	once  sync.Once
	mu    sync.Mutex
	hosts map[string]map[netip.Addr]bool
	// grants number this run's grants, so that an answer to a question
	// asked before a grant does not drop it (Set).
	seq    uint64
	grants map[string]map[netip.Addr]uint64
}

// load reads the files, once.
func (k *Book) load() {
	k.once.Do(func() {
		k.hosts = map[string]map[netip.Addr]bool{}
		entries, _ := os.ReadDir(k.Dir)
		for _, e := range entries {
			if ops.ValidateName(e.Name()) != nil {
				continue
			}
			b, err := statefiles.Read(filepath.Join(k.Dir, e.Name()))
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

// Mark is where the grants stand before host is asked, for Set.
func (k *Book) Mark() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.seq
}

// Set replaces what is known of host by what it answered: the addresses
// its containers hold, and of those it is claiming the ones granted to it
// here (which it has not withdrawn): a claim this host did not grant may
// fail with no word to this host. Grants after since (Mark) stay: the
// answer may have been made before their claims began.
func (k *Book) Set(host string, held, claiming []string, since uint64, log *slog.Logger) {
	set := map[netip.Addr]bool{}
	for _, f := range held {
		if a, err := netip.ParseAddr(f); err == nil {
			set[a] = true
		}
	}
	k.load()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, f := range claiming {
		if a, err := netip.ParseAddr(f); err == nil && k.hosts[host][a] {
			set[a] = true
		}
	}
	for a, n := range k.grants[host] {
		if n > since && k.hosts[host][a] {
			set[a] = true
		}
	}
	if old, ok := k.hosts[host]; ok && equalSets(old, set) {
		return
	}
	k.hosts[host] = set
	k.save(host, log)
}

// Add records an address granted to host.
func (k *Book) Add(host string, a netip.Addr, log *slog.Logger) {
	k.load()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.seq++
	if k.grants == nil {
		k.grants = map[string]map[netip.Addr]uint64{}
	}
	if k.grants[host] == nil {
		k.grants[host] = map[netip.Addr]uint64{}
	}
	k.grants[host][a] = k.seq
	if k.hosts[host][a] {
		return
	}
	if k.hosts[host] == nil {
		k.hosts[host] = map[netip.Addr]bool{}
	}
	k.hosts[host][a] = true
	k.save(host, log)
}

// Drop forgets a grant to host whose claim failed.
func (k *Book) Drop(host string, a netip.Addr, log *slog.Logger) {
	k.load()
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.grants[host], a)
	if !k.hosts[host][a] {
		return
	}
	delete(k.hosts[host], a)
	k.save(host, log)
}

// Holder is a host other than those in skip that is known to hold a.
func (k *Book) Holder(a netip.Addr, skip map[string]bool) string {
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
func (k *Book) save(host string, log *slog.Logger) {
	var lines []string
	for a := range k.hosts[host] {
		lines = append(lines, a.String())
	}
	slices.Sort(lines)
	if err := statefiles.Write(filepath.Join(k.Dir, host), []byte(strings.Join(lines, "\n")+"\n")); err != nil {
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
