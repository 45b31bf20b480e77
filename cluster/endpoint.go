package cluster

import (
	"sync"

	"ctrfs/cluster/members"
	"ctrfs/cluster/transport"
	"ctrfs/ops"
)

// Service is the RPC service of the migration endpoint, one per
// connection (Cluster.listen), registered as "Host": a peer calls
// Host.METHOD. Its methods live with their subject: the receiving side of
// a move in receive.go, LazyPages in postcopy.go, BugReport in
// bugreport.go; here, what a peer asks that is not a move.
type Service struct {
	c *Cluster

	mu    sync.Mutex
	begun []*session // this connection's sessions (receive.go)
}

type PullArgs struct{ Name, To string }

// Facts answers what this host is, for a move's check and hosts/PEER/info.
func (s *Service) Facts(_ bool, out *Facts) error {
	*out = s.c.facts
	out.MemAvailable = members.MemAvailable()
	out.RootIDs, out.RootIDsKnown = members.RootIDs()
	out.NoUnprivilegedLazyPages = members.NoUnprivilegedLazyPages()
	return nil
}

// List answers this host's containers, for hosts/PEER/.
func (s *Service) List(_ bool, out *[]ContainerSummary) error {
	names, err := s.c.m.List()
	if err != nil {
		return transport.WireError(err)
	}
	for _, n := range names {
		st, err := s.c.m.Status(n)
		if err != nil {
			continue
		}
		kv, _ := s.c.m.Info(n)
		*out = append(*out, ContainerSummary{Name: n, Status: st, Info: ops.FormatInfo(kv)})
	}
	return nil
}

// Pull moves one of this host's containers to the host that asks
// (Cluster.Pull).
func (s *Service) Pull(a PullArgs, out *bool) error {
	*out = true
	return transport.WireError(s.c.Migrate(a.Name, a.To))
}
