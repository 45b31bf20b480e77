package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestCgroup2OnlyForeignCgroups: on the cgroup2-only view, a container's
// stop-stateful and start neither record nor make again another
// container's v1 cgroups, here removed between the dump and the restore.
// CRIU walked every v1 cgroup on the machine there: a dump failed when
// one went meanwhile, and a restore left behind, empty, those gone since
// the dump (harness_cgroup2v1_test.go).
func TestCgroup2OnlyForeignCgroups(t *testing.T) {
	d := startCgroup2Only(t)
	var foreign []string
	for _, parent := range testV1Cgroups(t) {
		dir := filepath.Join(parent, fmt.Sprintf("lxc.payload.ctrfs-foreign-%d", testLane))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
		foreign = append(foreign, dir)
	}
	d.CreateRunning("c1")
	d.MustSh("echo stop-stateful > containers/c1/ctl")
	for _, dir := range foreign {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	d.MustSh("echo start > containers/c1/ctl")
	for _, dir := range foreign {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("the restore of c1 made %s again, another container's cgroup that its dump recorded", dir)
		}
	}
	d.MustSh("echo stop > containers/c1/ctl")
}
