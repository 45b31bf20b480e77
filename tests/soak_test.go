//go:build soak

package tests

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"ctrfs/internal/tree"
)

// TestSoak (`make soak`, not in CI) runs SOAK_ROUNDS rounds of random
// operations on SOAK_CONTAINERS containers spread over two daemons (start,
// stop-stateful, snapshot, restore, rename, move to the other host), one
// operation of each round cut short by a SIGKILL of either daemon, and after
// every round checks that each container is on exactly one host, RUNNING or
// STOPPED as its operations left it (with its saved state after a
// stop-stateful), with every snapshot it had, and that its counter service
// answers. An operation cut short may have happened or not: either outcome
// passes. SOAK_SEED replays a run; the seed is printed first.
func TestSoak(t *testing.T) {
	rounds, ncont := envInt("SOAK_ROUNDS", 20), envInt("SOAK_CONTAINERS", 3)
	seed := int64(envInt("SOAK_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("soak: seed %d (SOAK_SEED=%d replays it), %d rounds, %d containers", seed, seed, rounds, ncont)
	rng := rand.New(rand.NewSource(seed))

	a, b := twoHosts(t)
	s := &soak{t: t, rng: rng, hosts: []*Peer{a, b}, strays: map[string]bool{}}
	for i := 0; i < ncont; i++ {
		c := &soakContainer{name: fmt.Sprintf("c%d", i), host: i % 2, running: true, snaps: map[string]bool{}}
		s.hosts[c.host].CreateRunning(c.name)
		s.conts = append(s.conts, c)
	}
	for r := 1; r <= rounds; r++ {
		s.round(r)
	}
	t.Logf("soak: seed %d: %d rounds, %d operations, %d kills, %d violations", seed, rounds, s.ops, s.kills, len(s.violations))
	for _, v := range s.violations {
		t.Errorf("violation: %s", v)
	}
	for _, c := range s.conts {
		s.hosts[c.host].Sh("echo stop > containers/" + c.name + "/ctl")
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// soakContainer is what the operations so far say a container is.
type soakContainer struct {
	name     string
	host     int // index into soak.hosts
	running  bool
	state    bool // saved state (STOPPED after stop-stateful)
	snaps    map[string]bool
	stateful map[string]bool // which snapshots are stateful
}

func (c *soakContainer) clone() *soakContainer {
	n := *c
	n.snaps, n.stateful = map[string]bool{}, map[string]bool{}
	for k := range c.snaps {
		n.snaps[k] = true
	}
	for k := range c.stateful {
		n.stateful[k] = true
	}
	return &n
}

func (c *soakContainer) String() string {
	st := "STOPPED"
	if c.running {
		st = "RUNNING"
	}
	if c.state {
		st += "+state"
	}
	var snaps []string
	for k := range c.snaps {
		snaps = append(snaps, k)
	}
	sort.Strings(snaps)
	return fmt.Sprintf("%s on host %d %s snapshots %v", c.name, c.host, st, snaps)
}

type soak struct {
	t          *testing.T
	rng        *rand.Rand
	hosts      []*Peer
	conts      []*soakContainer
	ops, kills int
	violations []string
	serial     int
	strays     map[string]bool // containers no operation made, reported once
}

func (s *soak) violate(round int, format string, args ...any) {
	v := fmt.Sprintf("round %d: ", round) + fmt.Sprintf(format, args...)
	s.t.Log("VIOLATION " + v)
	s.violations = append(s.violations, v)
}

// An op is one operation: the ctl line or mv to run on the container's
// host, and what the container is after it.
type op struct {
	what   string
	script string
	after  *soakContainer
	killed *soakContainer // a further outcome if a kill cuts it short
}

// pick chooses an operation that applies to c as it is.
func (s *soak) pick(c *soakContainer) op {
	s.serial++
	after := c.clone()
	ctl := "containers/" + c.name + "/ctl"
	var choices []func() op
	if c.running {
		choices = append(choices, func() op {
			after.running, after.state = false, true
			return op{"stop-stateful", "echo stop-stateful > " + ctl, after, nil}
		})
	} else {
		choices = append(choices, func() op {
			after.running, after.state = true, false
			return op{"start", "echo start > " + ctl, after, nil}
		}, func() op {
			after.name = fmt.Sprintf("%sr%d", strings.SplitN(c.name, "r", 2)[0], s.serial)
			return op{"rename to " + after.name, fmt.Sprintf("mv containers/%s containers/%s", c.name, after.name), after, nil}
		})
	}
	choices = append(choices, func() op {
		snap := fmt.Sprintf("p%d", s.serial)
		after.snaps[snap] = true
		if c.running && s.rng.Intn(2) == 0 {
			after.stateful[snap] = true
			return op{"snapshot " + snap + " --stateful", "echo 'snapshot " + snap + " --stateful' > " + ctl, after, nil}
		}
		return op{"snapshot " + snap, "echo 'snapshot " + snap + "' > " + ctl, after, nil}
	}, func() op {
		other := 1 - c.host
		after.host = other
		return op{"move to " + s.hosts[other].Name, fmt.Sprintf("mv containers/%s hosts/%s/", c.name, s.hosts[other].Name), after, nil}
	})
	if len(c.snaps) > 0 {
		choices = append(choices, func() op {
			var snaps []string
			for k := range c.snaps {
				snaps = append(snaps, k)
			}
			sort.Strings(snaps)
			snap := snaps[s.rng.Intn(len(snaps))]
			after.state = false
			after.running = c.stateful[snap] || c.running
			// Killed after it stopped the container for the
			// rollback, and before it brought it back.
			stopped := after.clone()
			stopped.running = false
			return op{"restore " + snap, "echo 'restore " + snap + "' > " + ctl, after, stopped}
		})
	}
	return choices[s.rng.Intn(len(choices))]()
}

// round runs one operation on each container in random order, one of them
// cut short by a kill, then checks the invariant.
func (s *soak) round(r int) {
	order := s.rng.Perm(len(s.conts))
	killAt := s.rng.Intn(len(order))
	for i, ci := range order {
		c := s.conts[ci]
		o := s.pick(c)
		h := s.hosts[c.host]
		s.ops++
		if i != killAt {
			s.t.Logf("round %d: %s of %s", r, o.what, c)
			if out, err := h.Sh(o.script); err != nil {
				s.violate(r, "%s of %s failed: %v %s", o.what, c, err, out)
				s.resync(r, c, []*soakContainer{c, o.after})
				continue
			}
			s.conts[ci] = o.after
			continue
		}
		victim := s.rng.Intn(2)
		delay := time.Duration(50+s.rng.Intn(1500)) * time.Millisecond
		s.t.Logf("round %d: %s of %s, killing %s after %v", r, o.what, c, s.hosts[victim].Name, delay)
		bg := h.Background(o.script)
		time.Sleep(delay)
		s.hosts[victim].Kill()
		bg.Wait()
		s.kills++
		s.hosts[victim].waitForHelpers()
		s.hosts[victim].Start()
		s.hosts[0].waitHosts(s.hosts[0].Name, s.hosts[1].Name)
		s.hosts[1].waitHosts(s.hosts[0].Name, s.hosts[1].Name)
		outcomes := []*soakContainer{c, o.after}
		if o.killed != nil {
			outcomes = append(outcomes, o.killed)
		}
		s.resync(r, c, outcomes)
	}
	s.check(r)
}

// resync waits until the container matches one of the outcomes the
// operation allows (a killed migration settles once the target's lease is
// over) and takes what it finds as the model; a violation if none comes.
func (s *soak) resync(r int, before *soakContainer, outcomes []*soakContainer) {
	var problems []string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		problems = problems[:0]
		for _, want := range outcomes {
			p := s.mismatch(want)
			if p == "" {
				s.replace(before, want)
				return
			}
			problems = append(problems, p)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	s.violate(r, "%s after its operation: %s", before.name, strings.Join(problems, "; or "))
	if seen := s.observe(before, outcomes); seen != nil {
		s.replace(before, seen)
	}
}

func (s *soak) replace(old, c *soakContainer) {
	for i := range s.conts {
		if s.conts[i] == old {
			s.conts[i] = c
		}
	}
}

// observe makes a model of the container as the hosts show it, under any
// of the names of outcomes, so that the soak goes on after a violation.
func (s *soak) observe(before *soakContainer, outcomes []*soakContainer) *soakContainer {
	for _, want := range outcomes {
		for hi, h := range s.hosts {
			if !h.has(want.name) {
				continue
			}
			c := want.clone()
			c.host = hi
			st, _ := h.Sh("cat containers/" + c.name + "/status")
			c.running = strings.TrimSpace(st) == "RUNNING"
			info, _ := h.Sh("cat containers/" + c.name + "/info")
			c.state = tree.ParseKV(info)["stateful"] == "yes"
			ls, _ := h.Sh("ls containers/" + c.name + "/snapshots")
			c.snaps = map[string]bool{}
			for _, snap := range strings.Fields(ls) {
				c.snaps[snap] = true
			}
			return c
		}
	}
	return nil
}

// mismatch says how the hosts differ from want, or "" if they do not.
func (s *soak) mismatch(want *soakContainer) string {
	var on []int
	for hi, h := range s.hosts {
		if h.has(want.name) {
			on = append(on, hi)
		}
	}
	if len(on) != 1 {
		return fmt.Sprintf("want %s; %s is on hosts %v", want, want.name, on)
	}
	if on[0] != want.host {
		return fmt.Sprintf("want %s; it is on host %d", want, on[0])
	}
	h := s.hosts[want.host]
	st, err := h.Sh("cat containers/" + want.name + "/status")
	st = strings.TrimSpace(st)
	if err != nil || (st == "RUNNING") != want.running || (st != "RUNNING" && st != "STOPPED") {
		return fmt.Sprintf("want %s; status %q %v", want, st, err)
	}
	info, err := h.Sh("cat containers/" + want.name + "/info")
	kv := tree.ParseKV(info)
	if err != nil || (kv["stateful"] == "yes") != want.state {
		return fmt.Sprintf("want %s; info says stateful %q %v", want, kv["stateful"], err)
	}
	ls, err := h.Sh("ls containers/" + want.name + "/snapshots")
	if got := strings.Fields(ls); err != nil || len(got) != len(want.snaps) {
		return fmt.Sprintf("want %s; snapshots %v %v", want, got, err)
	}
	for snap := range want.snaps {
		if _, err := h.Sh("test -d containers/" + want.name + "/snapshots/" + snap); err != nil {
			return fmt.Sprintf("want %s; snapshot %s is missing", want, snap)
		}
	}
	if want.running {
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if _, err = tryCount(kv["ipv4"]); err == nil {
				return ""
			}
		}
		return fmt.Sprintf("want %s; its counter on %q does not answer: %v", want, kv["ipv4"], err)
	}
	return ""
}

// check is the invariant after a round: every container as the model says,
// and no container on any host that the model does not know.
func (s *soak) check(r int) {
	known := map[string]bool{}
	for _, c := range s.conts {
		known[c.name] = true
		if p := s.mismatch(c); p != "" {
			s.violate(r, "invariant: %s", p)
			if seen := s.observe(c, []*soakContainer{c}); seen != nil {
				s.replace(c, seen)
			}
		}
	}
	for _, h := range s.hosts {
		out, _ := exec.Command("lxc-ls", "-P", h.LXCPath).Output()
		for _, n := range strings.Fields(string(out)) {
			if !known[n] && !s.strays[h.Name+"/"+n] {
				s.strays[h.Name+"/"+n] = true
				s.violate(r, "invariant: %s has a container %s that no operation made", h.Name, n)
			}
		}
	}
	var all []string
	for _, c := range s.conts {
		all = append(all, c.String())
	}
	s.t.Logf("round %d: %s", r, strings.Join(all, "; "))
}
