package tests

import (
	"strings"
	"testing"
)

// TestEvacuate: `evacuate` moves every container to the peer, the running
// ones live (their counts go on) and a stopped one cold with its saved
// state, with an events line each; `evacuate HOST` brings them back.
func TestEvacuate(t *testing.T) {
	a, b := twoHosts(t)
	ip1 := a.CreateRunning("c1")
	ip2 := a.CreateRunning("c2")
	ip3 := a.CreateRunning("c3")
	a.MustSh("echo stop-stateful > containers/c3/ctl")
	events := a.readEvents()
	before1, before2 := Count(t, ip1), Count(t, ip2)

	a.MustSh("echo evacuate > ctl")
	if ls := strings.Fields(a.MustSh("ls containers")); strings.Join(ls, " ") != "hosts" {
		t.Fatalf("containers/ on the evacuated host: %v", ls)
	}
	for _, c := range []string{"c1", "c2"} {
		b.WantStatus("containers/"+c, "RUNNING", "on the peer after the evacuation")
		if b.Info(c)["move-mode"] != "live" {
			t.Errorf("%s moved %q, want live", c, b.Info(c)["move-mode"])
		}
	}
	before1 = countFrom(t, ip1, before1, "over the evacuation")
	before2 = countFrom(t, ip2, before2, "over the evacuation")
	b.WantStatus("containers/c3", "STOPPED", "c3 on the peer")
	if info := b.Info("c3"); info["stateful"] != "yes" || info["move-mode"] != "cold" {
		t.Fatalf("c3 on the peer: %v", info)
	}
	for _, c := range []string{"c1", "c2", "c3"} {
		events.waitFor(t, "dakara "+c+" evacuate ok")
		events.waitFor(t, "dakara "+c+" move ok")
	}
	if e := a.Read("error"); e != "" {
		t.Errorf("error after an evacuation that worked: %q", e)
	}

	b.MustSh("echo 'evacuate dakara' > ctl")
	for _, c := range []string{"c1", "c2", "c3"} {
		if b.has(c) || !a.has(c) {
			t.Fatalf("%s after evacuate dakara: on tollana %v, on dakara %v", c, b.has(c), a.has(c))
		}
	}
	countFrom(t, ip1, before1, "over the evacuation back")
	countFrom(t, ip2, before2, "over the evacuation back")
	a.MustSh("echo start > containers/c3/ctl")
	Count(t, ip3)
	for _, c := range []string{"c1", "c2", "c3"} {
		a.MustSh("echo stop > containers/" + c + "/ctl")
	}
}

// TestEvacuateFailure: a peer that cannot restore makes the live move of
// the running container fail: the write fails with EIO, the top-level
// error names it, it runs on here with its count, and the stopped one
// moved all the same; each container is on exactly one host. An unknown
// host and this host itself are refused before anything moves.
func TestEvacuateFailure(t *testing.T) {
	secret := newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr, fakeCRIU(t, "", true))
	a.waitHosts("dakara", "tollana")

	ip := a.CreateRunning("c1")
	a.MustSh("mkdir containers/c2")
	a.ShFails("echo 'evacuate nohost' > ctl", "No such file or directory")
	a.ShFails("echo 'evacuate dakara' > ctl", "Invalid argument")
	if !a.has("c1") || !a.has("c2") {
		t.Fatal("a refused evacuation moved containers")
	}
	events := a.readEvents()
	before := Count(t, ip)

	a.ShFails("echo evacuate > ctl", "Input/output error")
	e := a.Read("error")
	if !strings.Contains(e, "1 of 2 moves failed") || !strings.Contains(e, "c1 to tollana") || !strings.Contains(e, "RUNNING here") {
		t.Errorf("error after the failed evacuation: %q", e)
	}
	stillHere(t, a, b, ip, before)
	if a.has("c2") || !b.has("c2") {
		t.Errorf("c2: here %v, on the peer %v; want on the peer only", a.has("c2"), b.has("c2"))
	}
	events.waitFor(t, "dakara c1 evacuate failed")
	events.waitFor(t, "dakara c2 evacuate ok")

	// The error stays until a host command succeeds.
	a.MustSh("echo 'create c4' > ctl")
	if e := a.Read("error"); e != "" {
		t.Errorf("error after a create that worked: %q", e)
	}
	a.MustSh("echo stop > containers/c1/ctl")
}
