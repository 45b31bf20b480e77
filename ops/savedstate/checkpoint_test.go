package savedstate

import "testing"

func TestTransientDumpFailure(t *testing.T) {
	for log, want := range map[string]bool{
		"Error (compel/src/lib/infect.c:155): Unseizable non-zombie 1234 found, state D, err 0/0": true,
		"Error (compel/src/lib/infect.c:155): Unseizable non-zombie 7 found, state S, err -1/0":   false,
		"Error (criu/cr-dump.c:2111): Dumping FAILED.":                                            false,
		"(00.31) Error (criu/sk-queue.c:181): skqueue: Control messages in queue, not supported":  true,
	} {
		if got := transientDumpFailure([]byte(log)); got != want {
			t.Errorf("transientDumpFailure(%q) = %v", log, got)
		}
	}
}
