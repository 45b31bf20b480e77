package cluster

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
	k := &peerAddresses{dir: dir}
	k.set("tollana", []string{a.String()}, log)
	k.add("abydos", b, log) // granted to abydos

	again := &peerAddresses{dir: dir}
	if h := again.holder(a, nil); h != "tollana" {
		t.Errorf("after a restart, %s is %q's, want tollana's", a, h)
	}
	if h := again.holder(b, nil); h != "abydos" {
		t.Errorf("after a restart, %s is %q's, want abydos's (granted)", b, h)
	}
	if h := again.holder(a, map[string]bool{"tollana": true}); h != "" {
		t.Errorf("a host that answered is asked, not remembered: %q", h)
	}
	again.set("tollana", nil, log) // tollana answered: it holds nothing now
	if h := (&peerAddresses{dir: dir}).holder(a, nil); h != "" {
		t.Errorf("%s still %q's after tollana said it holds nothing", a, h)
	}
}
