package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
)

// TestCheckpointTakesNoOtherCgroups: a checkpoint records none of the
// cgroups of other containers, and its restore makes none of them. On
// cgroup2 alone, LXC leaves a container's tasks in the root of every v1
// hierarchy the host also mounts (a hybrid host: this test's view), and
// CRIU dumped each of those hierarchies whole, from its root: another
// container's LXC monitor cgroup that went between the dump and the
// restore failed the restore ("bad cgroup path: cpu/lxc.monitor.X/
// cpu.shares"), one still there was made again where it stayed. Here a
// cgroup in every v1 hierarchy plays the other container's.
func TestCheckpointTakesNoOtherCgroups(t *testing.T) {
	var v1 []string
	for _, h := range cgroupHierarchies(t) {
		if filepath.Base(h) != "unified" && h != "/sys/fs/cgroup" {
			v1 = append(v1, h)
		}
	}
	if len(v1) == 0 {
		t.Skip("this host mounts no cgroup v1 hierarchy")
	}
	d := startCgroup2Only(t)
	ip := d.CreateRunning("c1")

	other := fmt.Sprintf("lxc.monitor.ctrfs-test-%d-%d", testLane, os.Getpid())
	var made []string
	t.Cleanup(func() {
		for _, dir := range made {
			os.Remove(dir)
		}
	})
	for _, h := range v1 {
		dir := filepath.Join(h, other)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, dir)
	}

	n := Count(t, ip)
	if _, err := d.Sh("echo stop-stateful > containers/c1/ctl"); err != nil {
		t.Fatalf("stop-stateful: %v; error: %s", err, d.Read("containers/c1/error"))
	}
	dirs := dumpedCgroupDirs(t, d.Path("containers/c1/state/cgroup.img"))
	t.Logf("cgroup.img holds %d cgroup dirs:\n%s", len(dirs), strings.Join(firstOf(dirs, 40), "\n"))
	// An LXC monitor's cgroup is never within a container's.
	var others []string
	for _, dir := range dirs {
		if strings.Contains(dir, "/lxc.monitor.") {
			others = append(others, dir)
		}
	}
	if len(others) > 0 {
		t.Errorf("the dump of c1 holds %d cgroups of other containers' LXC monitors (%s among them):\n%s",
			len(others), other, strings.Join(firstOf(others, 20), "\n"))
	}

	// The other container stops before c1 starts again.
	for _, dir := range made {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Sh("echo start > containers/c1/ctl"); err != nil {
		t.Errorf("start from saved state: %v\nerror: %s", err, d.Read("containers/c1/error"))
	} else {
		CountsPast(t, ip, n, "after stop-stateful and start")
	}
	for _, dir := range made {
		if exists(dir) {
			t.Errorf("the restore of c1 made another container's cgroup %s", dir)
		}
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// firstOf is list cut to its first n, with how many more there are.
func firstOf(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(list[:n:n], fmt.Sprintf("... and %d more", len(list)-n))
}

// dumpedCgroupDirs lists the cgroup directories of a CRIU cgroup image,
// each as CONTROLLERS:PATH.
func dumpedCgroupDirs(t *testing.T, img string) []string {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := crit.New(f, nil, "", false, false).Decode(&cgroup.CgroupEntry{})
	if err != nil {
		t.Fatalf("decode cgroup.img: %v", err)
	}
	var out []string
	var walk func(ctl, parent string, dirs []*cgroup.CgroupDirEntry)
	walk = func(ctl, parent string, dirs []*cgroup.CgroupDirEntry) {
		for _, dir := range dirs {
			p := filepath.Join(parent, dir.GetDirName())
			out = append(out, ctl+":"+p)
			walk(ctl, p, dir.GetChildren())
		}
	}
	for _, e := range dec.Entries {
		for _, ctl := range e.Message.(*cgroup.CgroupEntry).GetControllers() {
			walk(strings.Join(ctl.GetCnames(), ","), "/", ctl.GetDirs())
		}
	}
	return out
}
