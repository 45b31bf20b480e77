package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMoveCarriesCriuFileAndCgroups: a live move takes the container's
// criu file and its recorded cgroups to the target, and the target uses
// both: the file's restore-only action script runs in the target's
// restore (the source only dumps), and the empty cgroups made under the
// container's on the source are there under its cgroup on the target.
func TestMoveCarriesCriuFileAndCgroups(t *testing.T) {
	a, b := twoHosts(t)
	ip := a.CreateRunning("c1")
	dir := t.TempDir()
	marker, script := filepath.Join(dir, "actions"), filepath.Join(dir, "mark.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$CRTOOLS_SCRIPT_ACTION\" >> "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	criu := "# marks the restores\nrestore: action-script " + script + "\n"
	a.MustSh("printf '" + strings.ReplaceAll(criu, "\n", "\\n") + "' | cat > containers/c1/criu")
	emptyCgroupsBesideTasks(t, a.Daemon, "c1")
	before := Count(t, ip)

	a.MustSh("mv containers/c1 hosts/tollana/")
	wantMoved(t, "c1", a, b, "after the move")
	countFrom(t, ip, before, "over the move")
	if got := b.Read("containers/c1/criu"); got+"\n" != criu {
		t.Errorf("the criu file on the target is %q; want %q", got, criu)
	}
	actions, _ := os.ReadFile(marker)
	if !strings.Contains(string(actions), "post-restore") {
		t.Errorf("the criu file's action script did not run in the target's restore (actions seen: %q)", actions)
	}
	checkEmptyCgroups(t, b.Daemon, "c1", "on the target")
	b.MustSh("echo stop > containers/c1/ctl")
}
