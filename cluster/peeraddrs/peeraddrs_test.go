package peeraddrs

import (
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
)

// What a host knows of its peers' addresses outlives a restart, and a
// peer's answer replaces it.
func TestPeerAddressesKept(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(t.TempDir(), "cluster", "addresses")
	a, b := netip.MustParseAddr("10.87.0.5"), netip.MustParseAddr("10.87.0.9")
	k := &Book{Dir: dir}
	k.Set("tollana", []string{a.String()}, nil, k.Mark(), log)
	k.Add("abydos", b, log) // granted to abydos

	again := &Book{Dir: dir}
	if h := again.Holder(a, nil); h != "tollana" {
		t.Errorf("after a restart, %s is %q's, want tollana's", a, h)
	}
	if h := again.Holder(b, nil); h != "abydos" {
		t.Errorf("after a restart, %s is %q's, want abydos's (granted)", b, h)
	}
	if h := again.Holder(a, map[string]bool{"tollana": true}); h != "" {
		t.Errorf("a host that answered is asked, not remembered: %q", h)
	}
	again.Set("tollana", nil, nil, again.Mark(), log) // tollana answered: it holds nothing now
	if h := (&Book{Dir: dir}).Holder(a, nil); h != "" {
		t.Errorf("%s still %q's after tollana said it holds nothing", a, h)
	}
}
