package ops

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"ctrfs/ops/network"
)

// fakeClaimer answers claims from a table, and records what it was asked
// and what was pending here when it was.
type fakeClaimer struct {
	m       *Manager
	mu      sync.Mutex
	answers map[netip.Addr][]error // answered in turn; the last one repeats
	asked   []netip.Addr
}

func (f *fakeClaimer) ClaimAddress(a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, a)
	// While a claim is out, the address is this host's to others.
	if err := f.m.AddressHeld(a); !errors.Is(err, ErrBusy) {
		return errors.New("address not pending during its claim")
	}
	ans := f.answers[a]
	if len(ans) == 0 {
		return nil
	}
	err := ans[0]
	if len(ans) > 1 {
		f.answers[a] = ans[1:]
	}
	return err
}

func claimManager(t *testing.T) (*Manager, *fakeClaimer) {
	lxcpath := t.TempDir()
	m := newManager(Config{LXCPath: lxcpath, Host: "dakara",
		Network: network.Network{Bridge: "br", Subnet: netip.MustParsePrefix("10.0.3.0/29")}}, context.Background(), nil, nil, nil)
	f := &fakeClaimer{m: m, answers: map[netip.Addr][]error{}}
	m.SetAddressClaimer(f)
	return m, f
}

// first is the address a create of name would take with no one to ask.
func first(t *testing.T, m *Manager, name string) netip.Addr {
	a, err := m.cfg.Network.AllocateAddress(m.cfg.LXCPath, m.cfg.Host, name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAllocateAddressSkipsWhatPeersHold(t *testing.T) {
	m, f := claimManager(t)
	taken := first(t, m, "c1")
	f.answers[taken] = []error{NewError(ErrExists, "in use on tollana")}
	a, release, err := m.claims.allocate("c1")
	if err != nil {
		t.Fatal(err)
	}
	if a == taken {
		t.Fatalf("took %s, which a peer holds", a)
	}
	if err := m.AddressHeld(a); !errors.Is(err, ErrBusy) {
		t.Errorf("before release, %s is %v to peers; want busy", a, err)
	}
	release()
	if err := m.AddressHeld(a); err != nil {
		t.Errorf("after release with no config, %s is %v; want free", a, err)
	}
	if err := m.AddressHeld(taken); err != nil {
		t.Errorf("a refused claim left %s %v here", taken, err)
	}
}

func TestAllocateAddressRetriesBusyClaims(t *testing.T) {
	m, f := claimManager(t)
	// Every address busy at first: the walk is tried again.
	for off := 2; off < 7; off++ {
		a := netip.AddrFrom4([4]byte{10, 0, 3, byte(off)})
		f.answers[a] = []error{NewError(ErrBusy, "claimed by tollana"), nil}
	}
	a, release, err := m.claims.allocate("c1")
	if err != nil {
		t.Fatal(err)
	}
	release()
	if a != first(t, m, "c1") {
		t.Errorf("after the busy round, took %s, want the first candidate", a)
	}
}

func TestAllocateAddressUnreachablePeerFails(t *testing.T) {
	m, f := claimManager(t)
	f.answers[first(t, m, "c1")] = []error{NewError(ErrUnreachable, "host tollana did not answer")}
	if _, _, err := m.claims.allocate("c1"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("allocate with a peer that does not answer: %v, want EHOSTUNREACH", err)
	}
	if len(m.claims.pending) != 0 {
		t.Errorf("pending after a failed claim: %v", m.claims.pending)
	}
}

func TestAddressHeldSeesConfigs(t *testing.T) {
	m, _ := claimManager(t)
	dir := filepath.Join(m.cfg.LXCPath, ".c9.creating")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "config"), []byte("lxc.net.0.ipv4.address = 10.0.3.5/29\n"), 0o600)
	if err := m.AddressHeld(netip.MustParseAddr("10.0.3.5")); !errors.Is(err, ErrExists) {
		t.Errorf("address of a container being created: %v, want exists", err)
	}
	got, claiming, err := m.Addresses()
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("10.0.3.5") || len(claiming) != 0 {
		t.Errorf("Addresses = %v, %v, %v", got, claiming, err)
	}
}

// A claim under way is answered apart from what configs hold: it may yet
// fail, and a peer keeps it only if it granted it.
func TestAddressesClaimingApart(t *testing.T) {
	m, _ := claimManager(t)
	a, release, err := m.claims.allocate("c1")
	if err != nil {
		t.Fatal(err)
	}
	held, claiming, err := m.Addresses()
	if err != nil || len(held) != 0 || len(claiming) != 1 || claiming[0] != a {
		t.Errorf("while claiming %s: held %v, claiming %v, %v", a, held, claiming, err)
	}
	release()
	if held, claiming, err = m.Addresses(); err != nil || len(held)+len(claiming) != 0 {
		t.Errorf("after release: held %v, claiming %v, %v", held, claiming, err)
	}
}
