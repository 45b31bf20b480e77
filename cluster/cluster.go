// Package cluster finds the other hosts and moves containers between
// them: the one router of ctl commands (commands.go), the migration
// endpoint's calls (Service: endpoint.go, receive.go), both ends of a move
// (migrate.go and what it names; receive.go), evacuation, address claims
// and bug reports, on top of ops/ for the steps on each host and images/
// for the chunks that travel. What it uses that needs no Cluster is in
// packages of its own below it: cluster/members (memberlist, the hosts'
// facts), cluster/transport (TLS, the secret's proofs and keys, the wire
// codec), cluster/peeraddrs (the peers' addresses known here) and
// cluster/statefiles (the state files under STORE/cluster/).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"ctrfs/cluster/members"
	"ctrfs/cluster/peeraddrs"
	"ctrfs/cluster/statefiles"
	"ctrfs/cluster/transport"
	"ctrfs/images/trust"
	"ctrfs/ops"
	"ctrfs/ops/moves"
)

// Config is this host's part in the cluster.
type Config struct {
	Host        string
	Bind        string   // gossip address host:port; "" runs alone
	Join        []string // gossip addresses of hosts to join
	Secret      []byte   // shared secret; nil runs alone
	MigratePort int      // migration endpoint port; 0 is the gossip port + 1
	StoreDir    string   // for the journals of migrations under way
	// PostCopyMoves makes every live move that starts here post-copy
	// (see MigratePostCopy): mv's, pulls' and evacuate's too.
	PostCopyMoves bool
	Log           *slog.Logger
	// Context is the daemon's root context, cancelled at shutdown; nil
	// is context.Background(). Moves take theirs from it (opCtx).
	Context context.Context
}

// Cluster is this host's view of the others and its migration endpoint.
type Cluster struct {
	cfg     Config
	m       *ops.Manager
	mv      *moves.Moves // m's, for this host's side of moves
	facts   Facts
	members *members.Membership // nil when alone
	auth    *transport.Auth
	ln      net.Listener

	sentBytes atomic.Int64 // chunk bytes sent to peers, for metrics

	recv *receiver // the moves that arrive (receive.go)

	mu        sync.Mutex
	lastMoves map[string]string // container -> target of its last move, for bug reports (lastmoves.go)
	moveWatch *ops.Subscription
	cpuFlags  map[string]string // CPU features by the digest gossip carries

	peerAddrs peeraddrs.Book // of the address claims (addresses.go)
}

// Start joins the cluster and opens the migration endpoint. Without a
// secret or a bind address the host runs alone: hosts/ lists only itself.
func Start(cfg Config, m *ops.Manager) (*Cluster, error) {
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	c := &Cluster{cfg: cfg, m: m, mv: m.Moves(), lastMoves: map[string]string{}, cpuFlags: map[string]string{}}
	c.recv = newReceiver(c.mv, c.stateDir("incoming"), cfg.Secret, c.opCtx, cfg.Log)
	c.facts = LocalFacts(cfg.Host, "", m.LXCVersion())
	c.facts.Storage = string(m.Storage())
	c.peerAddrs.Dir = c.stateDir("addresses")
	if len(cfg.Secret) == 0 || cfg.Bind == "" {
		if len(cfg.Join) > 0 {
			return nil, fmt.Errorf("--join needs --secret-file and --bind: without a secret a host runs alone")
		}
		c.watchMoves()
		return c, nil
	}
	host, portStr, err := net.SplitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("--bind %q: %w", cfg.Bind, err)
	}
	port := cfg.MigratePort
	if port == 0 {
		p, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("--bind %q: bad port", cfg.Bind)
		}
		port = p + 1
	}
	if c.auth, err = transport.NewAuth(cfg.Secret); err != nil {
		return nil, err
	}
	c.facts.Endpoint = net.JoinHostPort(host, strconv.Itoa(port))
	if err := c.listen(); err != nil {
		return nil, err
	}
	c.recv.recoverIncoming()
	if c.members, err = members.Start(cfg.Host, cfg.Bind, cfg.Join, filepath.Join(c.stateDir("gossip"), "peers"), cfg.Secret, c.facts, cfg.Log); err != nil {
		c.ln.Close()
		return nil, err
	}
	c.recoverOutgoing()
	c.watchMoves()
	m.SetAddressClaimer(c)
	return c, nil
}

// opCtx is the context of a move, either end, or of settling one: the
// root context without its cancellation. A move under way when the daemon
// is told to stop runs to its end first (ctrfs(8), SIGNALS); one cut short
// would leave the container half moved, and a settle cut short would take
// a target that did not answer yet for one that dropped its copy.
func (c *Cluster) opCtx() context.Context { return context.WithoutCancel(c.cfg.Context) }

func (c *Cluster) listen() error {
	ln, err := net.Listen("tcp", c.facts.Endpoint)
	if err != nil {
		return fmt.Errorf("migration endpoint: %w", err)
	}
	c.ln = ln
	go c.auth.Serve(ln, func(conn net.Conn) {
		svc := &Service{c: c}
		srv := rpc.NewServer()
		if err := srv.RegisterName("Host", svc); err != nil {
			c.cfg.Log.Error("cluster: rpc", "err", err)
			conn.Close()
			return
		}
		srv.ServeCodec(transport.NewServerCodec(conn))
		svc.connectionClosed()
	}, func(from net.Addr, err error) {
		c.cfg.Log.Warn("cluster: refused a connection to the migration endpoint", "from", from, "err", err)
	})
	return nil
}

// Close leaves the cluster and closes the endpoint.
func (c *Cluster) Close() {
	if c.moveWatch != nil {
		c.moveWatch.Close()
	}
	if c.members != nil {
		c.members.Leave()
	}
	if c.ln != nil {
		c.ln.Close()
	}
}

// Failed delivers the error that ends this host's part in the cluster
// after Start: it reached a cluster that has a host of its name already.
func (c *Cluster) Failed() <-chan error {
	if c.members == nil {
		return nil
	}
	return c.members.NameTaken()
}

// SentBytes is how many (compressed) chunk bytes this host has sent to
// peers in migrations since it started.
func (c *Cluster) SentBytes() int64 { return c.sentBytes.Load() }

// Facts are what a host must know about another before it sends it a
// container (members.Facts).
type Facts = members.Facts

// Peer is another host as the cluster sees it (members.Peer).
type Peer = members.Peer

// LocalFacts describes this machine (members.LocalFacts).
func LocalFacts(host, endpoint, lxcVersion string) Facts {
	return members.LocalFacts(host, endpoint, lxcVersion)
}

// Facts are this host's.
func (c *Cluster) Facts() Facts { return c.facts }

// Peers are the other hosts, by name.
func (c *Cluster) Peers() []Peer {
	if c.members == nil {
		return nil
	}
	return c.members.Peers()
}

// Peer finds another host by name.
func (c *Cluster) Peer(name string) (Peer, bool) {
	for _, p := range c.Peers() {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}

// PeerInfo is hosts/PEER/info: what gossip says, and the full list of CPU
// features, which does not fit in gossip: asked of the peer the first time
// its digest is seen, then kept by digest ("unknown" while no peer with
// that digest has answered), so that reading info costs no round trip.
func (c *Cluster) PeerInfo(host string) ([]ops.KeyValue, error) {
	p, ok := c.Peer(host)
	if !ok {
		return nil, ops.NewError(ops.ErrNotFound, fmt.Sprintf("no host %q in the cluster", host))
	}
	c.mu.Lock()
	features, known := c.cpuFlags[p.Meta.CPU]
	c.mu.Unlock()
	if !known {
		features = "unknown"
		if client, _, err := c.connect(host); err == nil {
			var f Facts
			if client.Call("Host.Facts", true, &f) == nil && f.CPUDigest() == p.Meta.CPU {
				features = strings.Join(f.CPUFlags, " ")
				c.mu.Lock()
				c.cpuFlags[p.Meta.CPU] = features
				c.mu.Unlock()
			}
			client.Close()
		}
	}
	return append(p.Info(), ops.KeyValue{Key: "cpu-features", Value: features}), nil
}

// connect dials a peer by name: ENOENT if there is no such host,
// EHOSTUNREACH if it does not answer.
func (c *Cluster) connect(host string) (*rpc.Client, Peer, error) {
	p, ok := c.Peer(host)
	if !ok {
		return nil, p, ops.NewError(ops.ErrNotFound, fmt.Sprintf("no host %q in the cluster", host))
	}
	if p.Status == "dead" {
		return nil, p, ops.NewError(ops.ErrUnreachable, fmt.Sprintf("host %s is dead", host))
	}
	client, err := transport.Dial(p.Meta.Endpoint, c.auth)
	return client, p, err
}

// ContainerSummary is one container of a peer, as hosts/PEER/NAME shows it.
type ContainerSummary struct {
	Name   string
	Status string
	Info   []byte
}

// PeerContainers lists a peer's containers, asking the peer.
func (c *Cluster) PeerContainers(host string) ([]ContainerSummary, error) {
	client, _, err := c.connect(host)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var out []ContainerSummary
	return out, transport.CallError(host, client.Call("Host.List", true, &out))
}

// Pull asks a peer to move one of its containers here.
func (c *Cluster) Pull(name, from string) error {
	client, _, err := c.connect(from)
	if err != nil {
		return err
	}
	defer client.Close()
	return transport.CallError(from, client.Call("Host.Pull", PullArgs{Name: name, To: c.cfg.Host}, new(bool)))
}

func (c *Cluster) stateDir(kind string) string {
	return filepath.Join(c.cfg.StoreDir, "cluster", kind)
}

// journals are the names of the containers that have a journal in dir
// (cluster/KIND/NAME.json) that ctrfs wrote.
func journals(dir string, log *slog.Logger) []string {
	if err := statefiles.TrustedDir(dir); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Error("cluster: ignoring migration journals in a directory that is not ctrfs's own: none is followed",
				"dir", dir, "reason", err)
		}
		return nil
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || ops.ValidateName(name) != nil {
			continue
		}
		if err := trust.TrustedFile(filepath.Join(dir, e.Name())); err != nil {
			log.Error("cluster: ignoring a migration journal that is not ctrfs's own",
				"file", filepath.Join(dir, e.Name()), "reason", err)
			continue
		}
		names = append(names, name)
	}
	return names
}
