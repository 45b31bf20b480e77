// Package members is who is in the cluster and what each host is: this
// host's memberlist (Membership: joining through --join and the peers of
// the last run, the peers gossip has alive, the name taken by another
// host), what a host gossips of itself and reports over its endpoint
// (Facts, facts.go; the kernel features a restore may need, features.go;
// the CPU flags a process may use, cpuflags.go), and CanTake, which
// compares two hosts' facts. It holds the membership's state only; it
// knows nothing of the migration endpoint's calls, of moves or of the
// containers.
package members

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"ctrfs/cluster/statefiles"
	"ctrfs/cluster/transport"
	"ctrfs/ops"
)

// nodeMeta is what a host gossips about itself; it must fit memberlist's
// 512 bytes, so the CPU flags travel as a digest.
type nodeMeta struct {
	Endpoint string `json:"ep"`
	Arch     string `json:"arch"`
	Kernel   string `json:"kernel"`
	CRIU     string `json:"criu"`
	LXC      string `json:"lxc"`
	CPU      string `json:"cpu"`
	// Mem is the free memory (MemAvailable) in MiB, gossiped again when
	// it changes by more than a sixteenth (refreshMeta).
	Mem int64 `json:"mem,omitempty"`
	// IDs are root's subordinate id ranges (idmap.Ranges.String), for
	// hosts/PEER/info; a move asks the peer afresh (Facts.RootIDs).
	// Empty from an older ctrfs, or if they did not fit the 512 bytes.
	IDs string `json:"ids,omitempty"`
	// Storage is how the host keeps new containers' rootfs
	// (Facts.Storage); empty from an older ctrfs.
	Storage string `json:"st,omitempty"`
}

// Peer is another host as the cluster sees it.
type Peer struct {
	Name    string
	Address string // gossip address
	Status  string // alive, suspect, dead
	Meta    nodeMeta
}

// Info is what gossip says of the peer, for its `info` file; the CPU
// features travel only as a digest (see Cluster.PeerInfo).
func (p Peer) Info() []ops.KeyValue {
	return []ops.KeyValue{
		{Key: "address", Value: p.Address}, {Key: "status", Value: p.Status},
		{Key: "endpoint", Value: p.Meta.Endpoint}, {Key: "arch", Value: p.Meta.Arch},
		{Key: "kernel", Value: p.Meta.Kernel}, {Key: "criu", Value: p.Meta.CRIU},
		{Key: "lxc", Value: p.Meta.LXC}, {Key: "cpu-digest", Value: p.Meta.CPU},
		{Key: "mem-available", Value: fmt.Sprint(p.Meta.Mem)}, // MiB, as gossiped
		{Key: "root-id-ranges", Value: cmp.Or(p.Meta.IDs, "unknown")},
		{Key: "storage", Value: cmp.Or(p.Meta.Storage, "unknown")},
	}
}

// Membership is this host's memberlist.
type Membership struct {
	ml   *memberlist.Memberlist
	name string
	log  *slog.Logger

	peersFile string

	mu        sync.Mutex
	nodeMeta  nodeMeta        // what this host gossips
	meta      []byte          // nodeMeta, encoded
	pending   []string        // join addresses not reached yet
	told      map[string]bool // join addresses whose wrong secret was logged
	stop      chan struct{}
	joined    chan struct{} // a peer joined: save the peers now
	joining   atomic.Bool   // a Join of this host's is under way
	nameTaken chan error    // this host joined a cluster that has its name
	// nodes are the peers memberlist has alive, copied as its events
	// report them: the nodes Members returns are memberlist's own, which
	// it rewrites under its lock as gossip arrives, so reading them races.
	// A peer memberlist suspects shows as alive until it is dead (and
	// gone from nodes): suspicion has no event.
	nodes map[string]Peer
}

// Start joins the cluster through join and the peers known at the
// last run (kept in peersFile), so that a restarted host finds the cluster
// again even if it was started without --join.
func Start(name, bind string, join []string, peersFile string, secret []byte, facts Facts, log *slog.Logger) (*Membership, error) {
	host, portStr, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, fmt.Errorf("--bind %q: %w", bind, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--bind %q: bad port", bind)
	}
	nm := nodeMeta{Endpoint: facts.Endpoint, Arch: facts.Arch, Kernel: facts.Kernel,
		CRIU: facts.CRIU, LXC: facts.LXC, CPU: facts.CPUDigest(), Mem: MemAvailable() >> 20, Storage: facts.Storage}
	if facts.RootIDsKnown {
		nm.IDs = facts.RootIDs.String()
	}
	meta, err := json.Marshal(nm)
	if err == nil && len(meta) > memberlist.MetaMaxSize && nm.IDs != "" {
		// Many ranges: info says unknown; moves ask the peer anyway.
		nm.IDs = ""
		meta, err = json.Marshal(nm)
	}
	if err != nil {
		return nil, err
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes, over memberlist's %d", len(meta), memberlist.MetaMaxSize)
	}
	key, err := transport.GossipKey(secret)
	if err != nil {
		return nil, err
	}
	m := &Membership{name: name, nodeMeta: nm, meta: meta, log: log, peersFile: peersFile, told: map[string]bool{}, nodes: map[string]Peer{},
		stop: make(chan struct{}), joined: make(chan struct{}, 1), nameTaken: make(chan error, 1)}
	m.pending = append(m.pending, join...)
	if b, err := statefiles.Read(peersFile); err == nil {
		m.pending = append(m.pending, strings.Fields(string(b))...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Error("cluster: ignoring the peers file", "file", peersFile, "reason", err)
	}

	// The local profile: peers are on one network, so failures are
	// detected within seconds.
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.BindAddr, cfg.BindPort = host, port
	cfg.AdvertiseAddr, cfg.AdvertisePort = host, port
	cfg.SecretKey = key
	cfg.Delegate = m
	cfg.Events = m
	cfg.Conflict = m
	cfg.Logger = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	m.ml, err = memberlist.Create(cfg)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", bind, err)
	}
	m.joinPending()
	select {
	case err := <-m.nameTaken:
		m.ml.Shutdown() // no Leave: that would say this name left, and it is the other host's
		return nil, err
	default:
	}
	go m.keepJoining()
	return m, nil
}

// NameTaken delivers the error that ends this host's part in the
// cluster: it joined a cluster that has a host of its name already.
func (m *Membership) NameTaken() <-chan error { return m.nameTaken }

// keepJoining retries join addresses that did not answer, so that hosts can
// start in any order, and saves the peers as soon as one joins: a host
// killed a moment after it met its peers must still find them again.
func (m *Membership) keepJoining() {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.joined:
			m.savePeers()
		case <-t.C:
			m.joinPending()
			m.savePeers()
			m.refreshMeta()
		}
	}
}

// refreshMeta gossips this host's free memory again once it has changed
// by more than a sixteenth since it was last gossiped: often enough for
// hosts/PEER/info, rarely enough not to flood gossip. (Evacuate asks each
// peer afresh over the endpoint.)
func (m *Membership) refreshMeta() {
	mib := MemAvailable() >> 20
	m.mu.Lock()
	old := m.nodeMeta.Mem
	if d := mib - old; d*16 <= old && -d*16 <= old {
		m.mu.Unlock()
		return
	}
	m.nodeMeta.Mem = mib
	meta, err := json.Marshal(m.nodeMeta)
	if err == nil && len(meta) <= memberlist.MetaMaxSize {
		m.meta = meta
	}
	m.mu.Unlock()
	if err := m.ml.UpdateNode(time.Second); err != nil {
		m.log.Debug("cluster: gossip free memory", "err", err)
	}
}

func (m *Membership) joinPending() {
	m.mu.Lock()
	addrs := m.pending
	m.mu.Unlock()
	if len(addrs) == 0 {
		return
	}
	var left []string
	for _, a := range addrs {
		m.joining.Store(true)
		_, err := m.ml.Join([]string{a})
		m.joining.Store(false)
		if len(m.nameTaken) > 0 {
			return // the daemon stops: see NotifyConflict
		}
		switch {
		case err == nil:
			m.log.Info("cluster: joined", "addr", a)
		case wrongSecret(err):
			// Logged once: the join is retried, as the peer at this
			// address may yet be replaced by one of this cluster.
			m.mu.Lock()
			told := m.told[a]
			m.told[a] = true
			m.mu.Unlock()
			if !told {
				m.log.Error("cluster: join "+a+": no answer with this cluster secret (wrong --secret-file?); will retry", "err", err)
			}
			left = append(left, a)
		default:
			m.log.Debug("cluster: join failed; will retry", "addr", a, "err", err)
			left = append(left, a)
		}
	}
	m.mu.Lock()
	m.pending = left
	m.mu.Unlock()
}

// wrongSecret tells a peer that answered in another key (its error, in
// this host's key, does not decrypt) or in none from one that did not
// answer.
func wrongSecret(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no installed keys could decrypt") ||
		strings.Contains(msg, "remote state is not encrypted")
}

// savePeers keeps the gossip addresses of the live peers for the next start.
func (m *Membership) savePeers() {
	var addrs []string
	for _, p := range m.Peers() {
		if p.Status != "dead" {
			addrs = append(addrs, p.Address)
		}
	}
	if len(addrs) == 0 {
		return
	}
	data := []byte(strings.Join(addrs, "\n") + "\n")
	if old, err := os.ReadFile(m.peersFile); err == nil && string(old) == string(data) {
		return
	}
	if err := statefiles.Write(m.peersFile, data); err != nil {
		m.log.Debug("cluster: cannot save the peers", "err", err)
	}
}

// NodeMeta and the rest implement memberlist.Delegate.
func (m *Membership) NodeMeta(limit int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meta
}
func (m *Membership) NotifyMsg([]byte)                       {}
func (m *Membership) GetBroadcasts(int, int) [][]byte        { return nil }
func (m *Membership) LocalState(join bool) []byte            { return nil }
func (m *Membership) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin and the rest implement memberlist.EventDelegate. memberlist
// calls them holding its own lock, so they copy the node and only wake
// keepJoining.
func (m *Membership) NotifyJoin(n *memberlist.Node) {
	m.keep(n)
	select {
	case m.joined <- struct{}{}:
	default: // a save is pending already
	}
}
func (m *Membership) NotifyLeave(n *memberlist.Node) {
	m.mu.Lock()
	delete(m.nodes, n.Name)
	m.mu.Unlock()
}
func (m *Membership) NotifyUpdate(n *memberlist.Node) { m.keep(n) }

// keep copies what peers reports of a node memberlist has alive.
func (m *Membership) keep(n *memberlist.Node) {
	if n.Name == m.name {
		return
	}
	p := Peer{Name: n.Name, Address: n.Address(), Status: stateName(n.State)}
	if err := json.Unmarshal(n.Meta, &p.Meta); err != nil {
		m.log.Debug("cluster: peer with unreadable metadata", "peer", n.Name, "err", err)
	}
	m.mu.Lock()
	m.nodes[n.Name] = p
	m.mu.Unlock()
}

// NotifyConflict implements memberlist.ConflictDelegate: a host announced
// itself under a name that a live host has, and memberlist refused it. If
// the name is this host's and this host is the one joining, this host is
// the newcomer and stops (Cluster.Failed); otherwise the newcomer was
// refused here and the log says so.
func (m *Membership) NotifyConflict(existing, other *memberlist.Node) {
	switch {
	case existing.Name == m.name && m.joining.Load():
		err := fmt.Errorf("a host named %s is in the cluster already, at %s: give this host another --name", existing.Name, other.Address())
		select {
		case m.nameTaken <- err:
		default:
		}
	case existing.Name == m.name:
		m.log.Error(fmt.Sprintf("cluster: refused a host at %s that joins as %s, this host's name: it must take another --name", other.Address(), other.Name))
	default:
		m.log.Error(fmt.Sprintf("cluster: refused a host at %s that joins as %s, the name of the host at %s: it must take another --name", other.Address(), other.Name, existing.Address()))
	}
}

// Peers are the other hosts memberlist has alive, by name.
func (m *Membership) Peers() []Peer {
	m.mu.Lock()
	out := make([]Peer, 0, len(m.nodes))
	for _, p := range m.nodes {
		out = append(out, p)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	default:
		return "dead"
	}
}

// Leave tells the others this host is going, so it disappears at once
// instead of after failure detection.
func (m *Membership) Leave() {
	close(m.stop)
	if err := m.ml.Leave(time.Second); err != nil {
		m.log.Debug("cluster: leave", "err", err)
	}
	m.ml.Shutdown()
}
