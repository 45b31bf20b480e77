package cluster

import (
	"reflect"
	"testing"
)

// TestSpread: the heaviest container goes where most memory is free, and
// what each takes counts against its host for the next.
func TestSpread(t *testing.T) {
	const mib = 1 << 20
	names := []string{"a", "b", "c", "d"}
	weight := map[string]int64{"a": 100 * mib, "b": 300 * mib, "c": 32 * mib, "d": 32 * mib}
	free := map[string]int64{"p1": 1000 * mib, "p2": 800 * mib}
	// b to p1 (700 left), a to p2 (700 left), c to p1 on the tie (668),
	// d to p2.
	want := map[string]string{"b": "p1", "a": "p2", "c": "p1", "d": "p2"}
	anywhere := func(string, string) bool { return true }
	if got := spread(names, weight, free, anywhere); !reflect.DeepEqual(got, want) {
		t.Errorf("spread: %v, want %v", got, want)
	}
	if free["p1"] != 1000*mib {
		t.Errorf("spread changed the free memory it was given: %v", free)
	}
}

// TestSpreadWhereItFits: a container goes only to a host it fits (an
// unprivileged one, to a host that can give it its map), and nowhere if
// none.
func TestSpreadWhereItFits(t *testing.T) {
	const mib = 1 << 20
	names := []string{"u", "v", "p"}
	weight := map[string]int64{"u": 100 * mib, "v": 50 * mib, "p": 32 * mib}
	free := map[string]int64{"small-range": 1000 * mib, "wide": 500 * mib}
	fits := func(name, host string) bool { return name == "p" || name == "u" && host == "wide" }
	want := map[string]string{"u": "wide", "v": "", "p": "small-range"}
	if got := spread(names, weight, free, fits); !reflect.DeepEqual(got, want) {
		t.Errorf("spread: %v, want %v", got, want)
	}
}
