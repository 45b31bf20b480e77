//go:build vmtest

package vmtest

import (
	"fmt"
	"testing"
	"time"
)

// TestServicesMore: the rest of issue 19's item 2 on stock hosts, in one
// debian-template container on VM A, each service as its own user (no
// User=root drop-in: the bed's root has CAP_SYS_RESOURCE): MariaDB (from
// the package cache), nginx, the Python web service with systemd's
// sandboxing, an ssh session logged in from this host whose shell runs a
// loop, and cron. check passes; then stop-stateful/start, a stateful
// snapshot and its restore, a live move A -> B and a post-copy move
// B -> A. Clients on this host (MariaDB inserts, Python POSTs, the ssh
// session's ticks) write all along: no acknowledged write is lost, no
// connection breaks, the units' main PIDs stay the same (restored, not
// started again), nginx answers, cron's job runs on, and each operation
// prints the clients' longest gaps as FIGURE lines. The restore takes the
// container back to the snapshot, connections too: the clients stop
// before it, and the services must then hold what they had acknowledged
// before the snapshot. The post-copy move comes last (docs/cluster.md,
// Post-copy).
func TestServicesMore(t *testing.T) {
	const name = "svc2"
	t0 := time.Now()
	ip := vmA.debianContainer(t, name)
	key := vmA.installMore(t, name)
	start := time.Now()
	vmA.mustCtlWhy(t, name, "check")
	t.Logf("FIGURE services-more check on %s: %.1f s", vmA.Name, time.Since(start).Seconds())
	pids := vmA.mainPIDs(t, name)

	var clients []*ackClient
	startAll := func() {
		t.Helper()
		clients = []*ackClient{
			startClient(t, "mariadb", func() (session, error) { return dialMariaDB(ip, key) }, mariadbInsert),
			startClient(t, "python", func() (session, error) { return dialPy(ip) }, "POST"),
			startClient(t, "ssh", func() (session, error) { return dialShell(ip, key) }, ""),
		}
	}
	startAll()

	// measure runs one operation with the clients writing, then checks
	// that each writes on, that the services are the processes they were
	// and answer, and returns the figures.
	measure := func(what string, on *VM, step func() error) string {
		t.Helper()
		marks := make([]int, len(clients))
		for i, c := range clients {
			marks[i] = c.mark()
		}
		begin := time.Now()
		if err := step(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		figures := fmt.Sprintf("write %.1f s", time.Since(begin).Seconds())
		on.WantStatus(t, name, "RUNNING", "after "+what)
		for i, c := range clients {
			figures += fmt.Sprintf(", %s client gap %.1f s", c.name, c.goesOn(t, marks[i], "over "+what).Seconds())
		}
		on.afterOperation(t, name, ip, pids, "after "+what)
		return figures
	}

	figures := measure("stop-stateful and start", vmA, func() error {
		if err := vmA.Ctl(name, "stop-stateful"); err != nil {
			return fmt.Errorf("%v%s", err, vmA.why(name))
		}
		if got := vmA.Status(name); got != "STOPPED" {
			return fmt.Errorf("%s after stop-stateful, want STOPPED%s", got, vmA.why(name))
		}
		return vmA.ctlWhy(name, "start")
	})
	t.Logf("FIGURE services-more stop-stateful/start on %s: %s; %s", vmA.Name, figures,
		pick(vmA.Info(name), "dump-seconds", "rehearsal-seconds", "criu-restore-seconds", "restore-mode"))

	// The snapshot with the clients writing; what they had acknowledged
	// before it began is in it. They stop before the restore, which takes
	// their connections back to the snapshot's.
	var mariadbRows, pyCount int
	figures = measure("snapshot s1 --stateful", vmA, func() error {
		mariadbRows, _ = clients[0].written()
		_, pyCount = clients[1].written()
		return vmA.ctlWhy(name, "snapshot s1 --stateful")
	})
	for _, c := range clients {
		c.close()
	}
	begin := time.Now()
	if err := vmA.ctlWhy(name, "restore s1"); err != nil {
		t.Fatalf("restore s1: %v", err)
	}
	restore := time.Since(begin)
	vmA.WantStatus(t, name, "RUNNING", "after restore s1")
	clients[0].holdsAtLeast(t, "SELECT COUNT(*) FROM ctrfs.t;", mariadbRows, "after restore s1 (rows acknowledged before the snapshot)")
	clients[1].holdsAtLeast(t, "GET", pyCount, "after restore s1 (count acknowledged before the snapshot)")
	vmA.afterOperation(t, name, ip, pids, "after restore s1")
	t.Logf("FIGURE services-more stateful snapshot/restore on %s: snapshot %s; restore write %.1f s; %s", vmA.Name, figures,
		restore.Seconds(), pick(vmA.Info(name), "criu-restore-seconds", "restore-mode"))
	startAll()

	hop := func(from, to *VM, postCopy bool) {
		t.Helper()
		cmd, mode := "move "+to.Name, "live"
		if postCopy {
			cmd, mode = cmd+" --post-copy", "post-copy"
		}
		figures := measure("the "+mode+" move "+from.Name+" -> "+to.Name, to, func() error {
			if err := from.Ctl(name, cmd); err != nil {
				return fmt.Errorf("%v%s%s", err, from.why(name), to.why(name))
			}
			return nil
		})
		if from.Has(name) {
			t.Errorf("%s is still on %s after its %s move to %s", name, from.Name, mode, to.Name)
		}
		info := to.Info(name)
		if info["move-mode"] != mode {
			t.Errorf("move-mode on %s after the %s move: %q", to.Name, mode, info["move-mode"])
		}
		t.Logf("FIGURE services-more %s move %s -> %s (%s -> %s): %s; %s", mode, from.Name, to.Name, kernel(from), kernel(to), figures,
			pick(info, "move-seconds", "downtime-seconds", "move-sent-bytes"))
	}
	hop(vmA, vmB, false)
	hop(vmB, vmA, true)

	// cron, restored, runs its job on.
	runs := vmA.cronRuns(t, name)
	waitFor(t, fmt.Sprintf("cron's job in %s to run again after the moves (it had run %d times)", name, runs), 5*time.Minute, func() bool {
		return vmA.cronRuns(t, name) > runs
	})
	clients[0].holds(t, "SELECT COUNT(*) FROM ctrfs.t;", true)
	clients[1].holds(t, "GET", false)
	clients[2].close()
	t.Logf("FIGURE services-more whole test: %.0f s", time.Since(t0).Seconds())
}

// afterOperation checks, after an operation, that the units are the
// processes they were, nginx answers and systemd says running.
func (v *VM) afterOperation(t *testing.T, name, ip string, pids map[string]string, when string) {
	t.Helper()
	v.samePIDs(t, name, pids, when)
	httpOK(t, ip)
	v.systemRunning(t, name)
}

// ctlWhy is Ctl with the container's error and log on failure.
func (v *VM) ctlWhy(name, command string) error {
	if err := v.Ctl(name, command); err != nil {
		return fmt.Errorf("%v%s", err, v.why(name))
	}
	return nil
}

// written is how many writes the client has had acknowledged, and the
// last value acknowledged.
func (c *ackClient) written() (writes, acked int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.acked
}

// holdsAtLeast checks, on a connection of its own, that the service
// answers query with at least want.
func (c *ackClient) holdsAtLeast(t *testing.T, query string, want int, when string) {
	t.Helper()
	var s session
	var err error
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(2 * time.Second) {
		if s, err = c.dial(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s takes no connection %s: %v", c.name, when, err)
		}
	}
	defer s.close()
	n, err := s.query(query)
	if err != nil {
		t.Fatalf("%s %s: %s: %v", c.name, when, query, err)
	}
	if n < want {
		t.Errorf("%s holds %d (%s) %s, want at least %d: acknowledged writes lost", c.name, n, query, when, want)
	}
}
