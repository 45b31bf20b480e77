package lxchelper

import "testing"

// TestUnbridged: a rehearsal's config keeps everything but the bridges.
func TestUnbridged(t *testing.T) {
	in := "lxc.uts.name = c1\nlxc.net.0.type = veth\nlxc.net.0.link = ctrfsbr0\nlxc.net.0.hwaddr = 00:16:3e:00:00:01\nlxc.net.1.link=br1\n"
	want := "lxc.uts.name = c1\nlxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:00:00:01\n"
	if got := string(unbridged([]byte(in))); got != want {
		t.Errorf("unbridged:\n%s\nwant:\n%s", got, want)
	}
}
