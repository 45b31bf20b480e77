package tests

import (
	"strings"
	"syscall"
	"testing"
)

// TestReservedContainerNames (issue 18, item 4): a name of the tree's own
// entries is no container's name. `create hosts` (and info, ctl, README)
// through ctl, mkdir, a rename and an incoming move are EINVAL, and
// `error` says why; containers/ lists hosts once; a container that has
// such a name already (made with LXC's tools) is refused by the target of
// a move and can be renamed away.
func TestReservedContainerNames(t *testing.T) {
	secret := newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr)
	a.waitHosts("dakara", "tollana")
	says := func(file, name string) {
		t.Helper()
		if e := a.Read(file); !strings.Contains(e, `"`+name+`"`) || !strings.Contains(e, "not a name for a container") {
			t.Errorf("%s does not say why %s was refused: %q", file, name, e)
		}
	}

	for _, name := range []string{"hosts", "info", "ctl", "README"} {
		a.ShFails("echo 'create "+name+"' > ctl", "Invalid argument")
		says("error", name)
	}
	a.ShFails("mkdir hosts/dakara/hosts", "Invalid argument")
	says("error", "hosts")
	a.ShFails("mkdir containers/status", "Invalid argument")
	says("error", "status")
	a.MustSh("mkdir containers/c1")
	if a.Read("error") != "" {
		t.Errorf("error after a mkdir that worked: %q", a.Read("error"))
	}
	if ls := strings.Fields(a.MustSh("ls containers")); strings.Join(ls, " ") != "c1 hosts" {
		t.Errorf("containers/ lists %v; want c1 and the hosts link", ls)
	}

	// mv words EINVAL from rename(2) as "cannot move … to a subdirectory
	// of itself": the errno is checked with a rename of our own.
	for _, to := range []string{"hosts/dakara/hosts", "containers/info"} {
		a.ShFails("mv "+a.Path("containers/c1")+" "+a.Path(to), "cannot move")
		says("containers/c1/error", to[strings.LastIndex(to, "/")+1:])
		if err := syscall.Rename(a.Path("containers/c1"), a.Path(to)); !errorIs(err, syscall.EINVAL) {
			t.Errorf("rename of c1 to %s: %v; want EINVAL", to, err)
		}
	}

	// LXC's own tools take any name: the container is still shown, once,
	// and a peer will not take it.
	mustRun(t, "lxc-copy", "-P", a.LXCPath, "-n", "c1", "-N", "hosts", "-R")
	if ls := strings.Fields(a.MustSh("ls containers")); strings.Join(ls, " ") != "hosts" {
		t.Errorf("containers/ lists %v; want the hosts link once", ls)
	}
	if ls := strings.Fields(a.MustSh("ls hosts/dakara")); strings.Join(ls, " ") != "hosts" {
		t.Errorf("hosts/dakara/ lists %v; want the container hosts", ls)
	}
	a.ShFails("echo 'move tollana' > hosts/dakara/hosts/ctl", "Invalid argument")
	says("hosts/dakara/hosts/error", "hosts")
	if b.has("hosts") || !a.has("hosts") {
		t.Fatalf("a refused move moved the container: on tollana %v, on dakara %v", b.has("hosts"), a.has("hosts"))
	}
	a.MustSh("mv hosts/dakara/hosts hosts/dakara/c2 && rmdir containers/c2")
}
