package members

import (
	"strings"
	"testing"

	"ctrfs/ops/idmap"
)

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"4.2.1", "4.2", 1}, {"4.2", "4.2.0", 0}, {"3.19", "4.2", -1},
		{"6.18.44-fc-v782", "6.18.44", 0}, {"6.1.0-13-amd64", "6.18.44", -1}, {"", "4.2", -1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestCanTake(t *testing.T) {
	src := Facts{Host: "a", Arch: "amd64", Kernel: "6.18.4", CRIU: "4.2", CPUFlags: []string{"avx2", "sse4_2"}, StoreFormat: 2,
		Features: []string{"timens", "userns"}, FeaturesKnown: true}
	ok := src
	ok.Host, ok.Kernel, ok.CPUFlags = "b", "6.19", []string{"avx2", "avx512f", "sse4_2"}
	if err := CanTake(src, ok); err != nil {
		t.Errorf("a newer host with more features: %v", err)
	}
	// A flag the kernel makes (6.12 lists xtopology, 6.1 does not on the
	// same CPU) is no CPU feature a process uses.
	kernelFlag := src
	kernelFlag.CPUFlags = append([]string{"xtopology"}, src.CPUFlags...)
	if err := CanTake(kernelFlag, ok); err != nil {
		t.Errorf("a source whose kernel lists xtopology: %v", err)
	}
	// The way back after an upgrade: an older kernel with what a restore
	// needs takes the container.
	back := ok
	back.Kernel, back.Features = "6.1.0", []string{"apparmor_stacking", "timens", "userns"}
	if err := CanTake(src, back); err != nil {
		t.Errorf("an older kernel with every feature a restore needs: %v", err)
	}
	old := src
	old.StoreFormat = 0
	if err := CanTake(old, ok); err != nil {
		t.Errorf("a newer ctrfs taking from an older one: %v", err)
	}
	for what, mutate := range map[string]func(*Facts){
		"arch":                 func(f *Facts) { f.Arch = "arm64" },
		"avx2":                 func(f *Facts) { f.CPUFlags = []string{"sse4_2"} },
		"lacks what a restore": func(f *Facts) { f.Kernel, f.Features = "6.1.0", []string{"timens"} },
		"userns":               func(f *Facts) { f.Features = nil },
		// A ctrfs that does not report features is judged by version.
		"older than": func(f *Facts) { f.Kernel, f.Features, f.FeaturesKnown = "6.1.0", nil, false },
		"CRIU":       func(f *Facts) { f.CRIU = "3.19" },
		// A ctrfs from before BLAKE3 chunk names reports no format.
		"older ctrfs": func(f *Facts) { f.StoreFormat = 0 },
	} {
		dst := ok
		mutate(&dst)
		if err := CanTake(src, dst); err == nil || !strings.Contains(err.Error(), what) {
			t.Errorf("target with other %s: %v", what, err)
		}
	}
}

// An unprivileged container goes only to a host whose root has a range
// over its map, and not to an older ctrfs that does not say.
func TestCanHold(t *testing.T) {
	m := idmap.Map{UID: 1000000, GID: 1000000}
	wide := idmap.Ranges{UID: []idmap.Range{{Start: 1000000, Count: 1000000000}}, GID: []idmap.Range{{Start: 1000000, Count: 1000000000}}}
	if err := CanHold(Facts{Host: "b", RootIDs: wide, RootIDsKnown: true}, m); err != nil {
		t.Errorf("a host with root's default range: %v", err)
	}
	small := Facts{Host: "b", RootIDs: idmap.Ranges{UID: []idmap.Range{{Start: 1000000, Count: 1000}}, GID: wide.GID}, RootIDsKnown: true}
	if err := CanHold(small, m); err == nil || !strings.Contains(err.Error(), "uids 1000000-1065535") {
		t.Errorf("a host whose uid range is too small: %v", err)
	}
	if err := CanHold(Facts{Host: "b", RootIDs: wide}, m); err == nil || !strings.Contains(err.Error(), "older ctrfs") {
		t.Errorf("a host that does not say: %v", err)
	}
}
