package cluster

import (
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"ctrfs/ops"
)

// book is a host's containers as a claim sees them: the addresses their
// configs hold and those it is claiming.
type book struct{ held, claiming []netip.Addr }

func (b *book) AddressHeld(a netip.Addr) error {
	switch {
	case slices.Contains(b.held, a):
		return ops.NewError(ops.ErrExists, "in use")
	case slices.Contains(b.claiming, a):
		return ops.NewError(ops.ErrBusy, "being claimed")
	}
	return nil
}

func (b *book) Addresses() (held, claiming []netip.Addr, err error) {
	return b.held, b.claiming, nil
}

// claimHost is one host of a cluster in one process: its claims reach the
// others' answers directly.
type claimHost struct {
	c    *Cluster
	book *book
}

func claimHosts(t *testing.T, names ...string) map[string]*claimHost {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hosts := map[string]*claimHost{}
	for _, n := range names {
		c := &Cluster{cfg: Config{Host: n, Log: log}}
		c.peerAddrs.Dir = filepath.Join(t.TempDir(), "addresses")
		hosts[n] = &claimHost{c: c, book: &book{}}
	}
	return hosts
}

// claim is h's claim of addr, asking peers in turn, as ClaimAddress does.
func (h *claimHost) claim(hosts map[string]*claimHost, addr netip.Addr, peers ...string) error {
	ask := func(p string, a netip.Addr) (ClaimReply, error) {
		var out ClaimReply
		err := hosts[p].c.answerClaim(hosts[p].book, ClaimArgs{Addr: a.String(), From: h.c.cfg.Host}, &out)
		return out, err
	}
	withdraw := func(p string, a netip.Addr) {
		(&Service{c: hosts[p].c}).WithdrawClaim(ClaimArgs{Addr: a.String(), From: h.c.cfg.Host}, new(bool))
	}
	h.book.claiming = append(h.book.claiming, addr)
	err := h.c.claim(addr, peers, ask, withdraw)
	h.book.claiming = slices.DeleteFunc(h.book.claiming, func(a netip.Addr) bool { return a == addr })
	if err == nil {
		h.book.held = append(h.book.held, addr)
	}
	return err
}

// A claim that failed leaves its address free for the others once the
// claimant is dead (TestSegmentNetwork: the subnet full with .8 free).
// edora's claim of .8 is refused by abydos, which is claiming .8 itself,
// after chulak granted it or before chulak is asked; just before abydos
// answers, chulak's claim of .5 hears from edora that it claims .8. Then
// edora dies (the others no longer ask it): abydos's claim of .8 must be
// granted.
func TestFailedClaimReservesNothing(t *testing.T) {
	for _, order := range [][]string{{"chulak", "abydos"}, {"abydos", "chulak"}} {
		t.Run("edora asks "+order[0]+" first", func(t *testing.T) { failedClaim(t, order) })
	}
}

func failedClaim(t *testing.T, order []string) {
	hosts := claimHosts(t, "abydos", "chulak", "edora")
	abydos, chulak, edora := hosts["abydos"], hosts["chulak"], hosts["edora"]
	eight, five := netip.MustParseAddr("10.92.0.8"), netip.MustParseAddr("10.92.0.5")

	abydos.book.claiming = []netip.Addr{eight}
	edora.book.claiming = []netip.Addr{eight}
	ask := func(p string, a netip.Addr) (ClaimReply, error) {
		if p == "abydos" {
			if err := chulak.claim(hosts, five, "edora", "abydos"); err != nil {
				t.Fatalf("chulak's claim of %s: %v", five, err)
			}
		}
		var out ClaimReply
		err := hosts[p].c.answerClaim(hosts[p].book, ClaimArgs{Addr: a.String(), From: "edora"}, &out)
		return out, err
	}
	withdraw := func(p string, a netip.Addr) {
		(&Service{c: hosts[p].c}).WithdrawClaim(ClaimArgs{Addr: a.String(), From: "edora"}, new(bool))
	}
	if err := edora.c.claim(eight, order, ask, withdraw); err == nil {
		t.Fatalf("edora's claim of %s granted while abydos claims it", eight)
	}
	edora.book.claiming = nil
	abydos.book.claiming = nil // abydos's own claim failed at edora

	// edora is dead: abydos asks chulak alone.
	if err := abydos.claim(hosts, eight, "chulak"); err != nil {
		t.Errorf("with edora dead, abydos's claim of %s, which edora's claim failed to take: %v", eight, err)
	}
	for _, h := range hosts {
		if got := h.c.peerAddrs.Holder(eight, map[string]bool{"abydos": true}); got != "" {
			t.Errorf("%s keeps %s as %s's", h.c.cfg.Host, eight, got)
		}
	}
	// What was granted and not withdrawn stays: chulak's .5 is chulak's
	// at abydos and edora.
	for _, h := range []*claimHost{abydos, edora} {
		if got := h.c.peerAddrs.Holder(five, nil); got != "chulak" {
			t.Errorf("%s has %s as %q's, want chulak's", h.c.cfg.Host, five, got)
		}
	}
}

// A grant made while this host's own question to the grantee is under way
// outlives the answer, which was made before the claim began: else, once
// the grantee is dead, this host would hand its address out again.
func TestGrantDuringAnswerKept(t *testing.T) {
	hosts := claimHosts(t, "chulak", "edora")
	chulak, edora := hosts["chulak"], hosts["edora"]
	five, eight := netip.MustParseAddr("10.92.0.5"), netip.MustParseAddr("10.92.0.8")
	ask := func(p string, a netip.Addr) (ClaimReply, error) {
		var out ClaimReply
		err := edora.c.answerClaim(edora.book, ClaimArgs{Addr: a.String(), From: "chulak"}, &out)
		// The answer is on its way when edora claims .8 from chulak.
		if err := edora.claim(hosts, eight, "chulak"); err != nil {
			t.Fatalf("edora's claim of %s: %v", eight, err)
		}
		return out, err
	}
	if err := chulak.c.claim(five, []string{"edora"}, ask, func(string, netip.Addr) {}); err != nil {
		t.Fatalf("chulak's claim of %s: %v", five, err)
	}
	if got := chulak.c.peerAddrs.Holder(eight, nil); got != "edora" {
		t.Errorf("chulak has %s as %q's, want edora's (granted while edora answered)", eight, got)
	}
}
