package cluster

import "testing"

func TestAfterLazyDump(t *testing.T) {
	cases := []struct {
		name   string
		dump   lazyDumpEnd
		target targetLazyState
		want   sourceAction
	}{
		{"pages still going, target filling", dumpRunning, targetFilling, sourceWaits},
		{"pages still going, target silent", dumpRunning, targetUnknown, sourceWaits},
		{"target's restore failed before its daemon connected: CRIU would wait for good", dumpRunning, targetFailed, sourceResumes},
		{"the connection dropped mid-copy", dumpFailed, targetUnknown, sourceResumes},
		{"the target died mid-copy", dumpFailed, targetFailed, sourceResumes},
		{"transfer error even if the target thinks it is whole", dumpFailed, targetWhole, sourceResumes},
		{"clean close and a whole copy", dumpCompleted, targetWhole, sourceLetsGo},
		{"clean close is not enough: wait for the target's word", dumpCompleted, targetUnknown, sourceWaits},
		{"clean close while the target still fills", dumpCompleted, targetFilling, sourceWaits},
		{"clean close after a failed restore there: the stopped tasks resume", dumpCompleted, targetFailed, sourceResumes},
	}
	for _, c := range cases {
		if got := afterLazyDump(c.dump, c.target); got != c.want {
			t.Errorf("%s: afterLazyDump(%v, %v) = %v, want %v", c.name, c.dump, c.target, got, c.want)
		}
	}
}

func TestAfterLazyDaemon(t *testing.T) {
	if !afterLazyDaemon(true, true) {
		t.Error("a copy whose every page arrived is not kept")
	}
	if afterLazyDaemon(false, true) {
		t.Error("a copy whose page source vanished is kept (it would run on zero-filled pages)")
	}
	if afterLazyDaemon(true, false) || afterLazyDaemon(false, false) {
		t.Error("a copy whose restore failed is kept")
	}
}
