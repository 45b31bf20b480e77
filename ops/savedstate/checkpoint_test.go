package savedstate

import "testing"

func TestFreezeTimedOut(t *testing.T) {
	for log, want := range map[string]bool{
		"Error (compel/src/lib/infect.c:155): Unseizable non-zombie 1234 found, state D, err 0/0": true,
		"Error (compel/src/lib/infect.c:155): Unseizable non-zombie 7 found, state S, err -1/0":   false,
		"Error (criu/cr-dump.c:2111): Dumping FAILED.":                                            false,
	} {
		if got := freezeTimedOut([]byte(log)); got != want {
			t.Errorf("freezeTimedOut(%q) = %v", log, got)
		}
	}
}
