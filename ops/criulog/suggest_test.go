package criulog

import (
	"strings"
	"testing"
)

// TestRestoreFixes: fixes come from error lines only, once each, and not
// from the debug lines every run logs.
func TestRestoreFixes(t *testing.T) {
	log := []byte(`(00.001) cg: Set 1 is criu one
(00.002) net: Restoring netns
(00.003) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.004) Error (criu/cr-restore.c:2183): Aborting restore due to post-restore script ret code 3
(00.005) Error (criu/action-scripts.c:140): One of more action scripts failed
(00.006) Error (criu/sk-tcp.c:412): tcp: Can't restore TCP repair window
`)
	got := RestoreFixes(log)
	if len(got) != 2 || !strings.Contains(got[0], "action-script") || !strings.Contains(got[1], "tcp-close") {
		t.Fatalf("RestoreFixes = %q; want the action script's fix, then TCP's", got)
	}
	if got := RestoreFixes([]byte("(00.001) cg: Set 1\n(00.002) net: lo\n")); len(got) != 0 {
		t.Errorf("RestoreFixes of a log without errors = %q", got)
	}
}
