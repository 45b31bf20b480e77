package lxchelper

import (
	"regexp"
	"testing"
)

// TestUnbridged: a rehearsal's config keeps everything but the bridges.
func TestUnbridged(t *testing.T) {
	in := "lxc.uts.name = c1\nlxc.net.0.type = veth\nlxc.net.0.link = ctrfsbr0\nlxc.net.0.hwaddr = 00:16:3e:00:00:01\nlxc.net.1.link=br1\n"
	want := "lxc.uts.name = c1\nlxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:00:00:01\n"
	if got := string(unbridged([]byte(in))); got != want {
		t.Errorf("unbridged:\n%s\nwant:\n%s", got, want)
	}
}

// Two daemons (LXC paths) rehearsing containers of one name at once
// must not share the rehearsal's cgroup: the second's restore then moved
// its tasks into the first's cgroup tree, which the first removed
// (make test's two end-to-end passes, each with a c1, failed so).
func TestRehearsalCgroupPerLXCPath(t *testing.T) {
	a := rehearsalCgroup("c1", "/tmp/lane0/lxc/.rehearsal-c1")
	b := rehearsalCgroup("c1", "/tmp/lane5/lxc/.rehearsal-c1")
	if a == b {
		t.Fatalf("two LXC paths share the rehearsal cgroup %s", a)
	}
	if again := rehearsalCgroup("c1", "/tmp/lane0/lxc/.rehearsal-c1"); again != a {
		t.Errorf("one LXC path gives %s, then %s", a, again)
	}
	// As LXC names a taken one (lxc.payload.NAME-N), which
	// tests/cgroup_leftovers_test.go looks for.
	if !regexp.MustCompile(`^lxc\.rehearsal\.c1-[0-9]+$`).MatchString(a) {
		t.Errorf("rehearsal cgroup %q", a)
	}
}
