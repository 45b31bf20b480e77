package main

// The services part (--only services; issue 19), with --template debian:
// one debian-template container with stock Debian service packages
// (internal/debpkg installs them from the host's package cache), each
// driven by a client on this host that sends acknowledged writes over one
// TCP connection (services_clients.go): Redis (INCR), and PostgreSQL (an
// INSERT loop) where this host can checkpoint tasks of other users (root
// with CAP_SYS_RESOURCE, as ops's check asks; elsewhere it is measured on
// the real-hosts test bed, docs/vmtest.md). In --runs rounds, on the
// same container (started again, untimed, before each round after the
// first: startCold says why), each of:
//
//	raw            `lxc-checkpoint -s` then `-r` in place (migrate.go's
//	               raw side), no ctrfs: the floor
//	stop/start     `stop-stateful`, then `start`
//	restore        `snapshot NAME --stateful` (untimed), then `restore
//	               NAME`, which takes the processes back to the snapshot:
//	               the clients connect again
//	live move      `move PEER` to the migration part's second daemon
//	               (--peer-mount), and back in the next round
//
// The downtime is what each client sees: the longest gap between its
// acknowledged writes from the last one before the operation to the first
// one after it. After each operation the service must hold at least the
// last write acknowledged before it (before the snapshot, for a restore):
// no acknowledged write lost.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"ctrfs/internal/caps"
	"ctrfs/internal/debpkg"
	"ctrfs/internal/tree"
)

const (
	svcRaw     = "raw -s + -r"
	svcStop    = "stop/start"
	svcRestore = "restore"
	svcMove    = "live move"
)

// svcClient is one service and its client.
type svcClient struct {
	name string // redis, postgresql
	unit string // its systemd unit, whose main PID must survive every operation
	port string
	dial func(net.Conn) (wireSession, error)
	c    *ackClient
}

// svcSample is one client's view of one operation.
type svcSample struct {
	run                int
	op, service, where string
	total, gap         time.Duration
	before, after      int // the reference acknowledged value, the value read after
	reconnects         int // connections the client opened again over the operation
	refused            int // new connections refused before the read after it answered
}

type svcBench struct {
	cfg     *config
	hosts   []*migHost // the bench's host, and the peer when there is one
	at      int
	ip      string
	clients []*svcClient
	samples []svcSample
	pgWhy   string // why PostgreSQL is not measured here, or ""
}

func runServices(cfg *config, work string, interrupts chan os.Signal) error {
	scfg := *cfg
	scfg.name = cfg.name + "-svc"
	s := &svcBench{cfg: &scfg, hosts: []*migHost{{b: newBench(&scfg, work, interrupts)}}}
	if cfg.peerMount != "" && !cfg.rawOnly {
		if cfg.peerLxcpath == "" {
			return errors.New("--peer-mount needs --peer-lxcpath (the peer daemon's LXC path)")
		}
		pcfg := scfg
		pcfg.mount, pcfg.lxcpath = cfg.peerMount, cfg.peerLxcpath
		s.hosts = append(s.hosts, &migHost{b: newBench(&pcfg, work, interrupts)})
	}
	for _, h := range s.hosts {
		name, err := tree.Host(h.b.cfg.mount)
		if err != nil {
			return err
		}
		h.name = name
	}
	pkgs := servicePackages(caps.CheckpointOtherUsers())
	if len(pkgs) == 1 {
		s.pgWhy = "not measured here: this host's root lacks CAP_SYS_RESOURCE, so CRIU cannot checkpoint its tasks (user postgres; check refuses it); it is measured on the real-hosts test bed: make vmbench (docs/vmtest.md)"
	}
	fmt.Printf("\nctrfs-bench: services: debian container %q with %s on %s, %d round(s)\n", scfg.name, strings.Join(pkgs, ", "), cfg.mount, cfg.runs)
	if s.pgWhy != "" {
		fmt.Printf("ctrfs-bench: services: PostgreSQL %s\n", s.pgWhy)
	}

	a := s.hosts[0].b
	if err := a.createContainer(); err != nil {
		return fmt.Errorf("create %s: %w%s", a.ctr, err, tree.ErrorSuffix(a.ctr))
	}
	if !cfg.keep {
		defer func() {
			for _, h := range s.hosts {
				h.b.destroy()
			}
		}()
	}
	if err := s.setup(pkgs); err != nil {
		return err
	}
	defer func() {
		for _, c := range s.clients {
			c.c.close()
		}
	}()

	for i := 1; i <= cfg.runs; i++ {
		ops := []string{svcRaw}
		if !cfg.rawOnly {
			ops = append(ops, svcStop, svcRestore)
			if len(s.hosts) > 1 {
				ops = append(ops, svcMove)
			}
		}
		if i > 1 {
			if err := s.startCold(); err != nil {
				return fmt.Errorf("services: round %d, starting %s again: %w", i, s.hosts[s.at].b.ctr, err)
			}
		}
		for _, op := range ops {
			if err := s.hosts[s.at].b.checkInterrupt(); err != nil {
				return err
			}
			if err := s.measure(i, op); err != nil {
				return fmt.Errorf("services: round %d, %s on %s: %w", i, op, s.hosts[s.at].name, err)
			}
		}
	}
	s.report(os.Stdout)
	if len(s.hosts) == 1 && !cfg.rawOnly {
		fmt.Println("(live move: not measured, no --peer-mount; scripts/bench.sh starts a peer)")
	}
	if cfg.keep {
		fmt.Printf("\n--keep: container %s left running\n", s.hosts[s.at].b.ctr)
	}
	return nil
}

// setup starts the container, installs the packages into it, sets the
// services up for the host's clients and starts the clients.
func (s *svcBench) setup(pkgs []string) error {
	b := s.hosts[0].b
	b.rootfs = rootfsOf(b.cfg.lxcpath, b.cfg.name)
	if err := tree.Ctl(b.ctr, "start"); err != nil {
		return err
	}
	if err := b.waitBooted(); err != nil {
		return err
	}
	mirror, err := debpkg.TemplateMirror(s.cfg.templateCache)
	if err != nil {
		return err
	}
	t0 := time.Now()
	dir, _, err := debpkg.Dir(b.rootfs, mirror, pkgs)
	if err != nil {
		return err
	}
	attach := func(args ...string) (string, error) { return b.attach(args...) }
	n, err := debpkg.Install(b.rootfs, dir, attach)
	if err != nil {
		return err
	}
	fmt.Printf("ctrfs-bench: services: %d packages from %s installed in %.0f s\n", n, dir, time.Since(t0).Seconds())
	if out, err := b.attach("sh", "-c", servicesSetup(len(pkgs) > 1)+" </dev/null"); err != nil {
		return fmt.Errorf("setting the services up: %v\n%s", err, out)
	}
	if err := b.waitBooted(); err != nil {
		return err
	}
	if s.ip = tree.Info(b.ctr)["ipv4"]; s.ip == "" {
		return fmt.Errorf("%s has no ipv4 in its info", b.ctr)
	}
	s.clients = []*svcClient{{name: "redis", unit: "redis-server", port: "6379", dial: dialRedis("ctrfs-bench")}}
	if len(pkgs) > 1 {
		s.clients = append(s.clients, &svcClient{name: "postgresql", unit: "postgresql@15-main", port: "5432", dial: dialPostgres("ctrfs_bench")})
	}
	for _, c := range s.clients {
		c.c = startAckClient(c.name, net.JoinHostPort(s.ip, c.port), c.dial)
		if _, err := c.c.waitAck(time.Now(), time.Minute); err != nil {
			return err
		}
	}
	// A few seconds of steady writing before the first operation.
	time.Sleep(3 * time.Second)
	return nil
}

// servicesSetup has the services answer the host's clients. Where root
// lacks CAP_SYS_RESOURCE (this VM) Redis runs as root, as the end-to-end
// tests' drop-in has it (tests/services_setup_test.go), for CRIU may not
// read the limits of a task of another user there.
func servicesSetup(postgres bool) string {
	script := `set -e
sed -i -e 's/^bind .*/bind 0.0.0.0/' -e 's/^protected-mode yes/protected-mode no/' /etc/redis/redis.conf
`
	if !postgres {
		// Stopped first: Redis as its own user cannot save into
		// root's directory, and would not exit.
		script += `systemctl stop redis-server
mkdir -p /etc/systemd/system/redis-server.service.d
printf '[Service]\nUser=root\nGroup=root\n' > /etc/systemd/system/redis-server.service.d/ctrfs-bench-root.conf
chown -R root:root /etc/redis /var/lib/redis /var/log/redis
`
	} else {
		script += `echo "listen_addresses = '*'" > /etc/postgresql/15/main/conf.d/ctrfs-bench.conf
echo 'host all postgres 0.0.0.0/0 trust' >> /etc/postgresql/15/main/pg_hba.conf
systemctl restart postgresql@15-main
runuser -u postgres -- psql -q -c 'CREATE TABLE ctrfs_bench (id bigserial PRIMARY KEY)'
`
	}
	return script + `systemctl daemon-reload
systemctl reset-failed
systemctl restart redis-server
`
}

// startCold stops the container and starts it again, untimed, so that
// each round's raw step dumps a container LXC started, as the first
// round's does. The last round left it restored (by its restore or its
// move), and LXC 5.0's own lxc-checkpoint -s cannot dump a container LXC
// restored on a cgroup2-only host: "Failed getting freezer path" (ops
// works around that: ops/lxchelper/criudump.go). The clients connect
// again to the services the container's boot starts.
func (s *svcBench) startCold() error {
	b := s.hosts[s.at].b
	if _, err := b.ctlUntil("stop", "STOPPED"); err != nil {
		return err
	}
	if _, err := b.ctlUntil("start", "RUNNING"); err != nil {
		return fmt.Errorf("%w%s", err, logTail(filepath.Join(b.ctr, "log")))
	}
	if err := b.waitBooted(); err != nil {
		return err
	}
	for _, c := range s.clients {
		if _, err := c.c.waitAck(time.Now(), 3*time.Minute); err != nil {
			return err
		}
	}
	time.Sleep(3 * time.Second)
	return nil
}

// measure runs one operation on the container where it is, and reads
// each client's downtime and checks that no acknowledged write was lost.
func (s *svcBench) measure(run int, op string) error {
	src := s.hosts[s.at]
	// The reference of a restore is the last write acknowledged before
	// the snapshot; of the rest, the last before the operation.
	refs := map[string]int{}
	if op == svcRestore {
		for _, c := range s.clients {
			a, _ := c.c.last()
			refs[c.name] = a.value
		}
		snap := fmt.Sprintf("svc-%d", run)
		if err := tree.Ctl(src.b.ctr, "snapshot "+snap+" --stateful"); err != nil {
			return fmt.Errorf("snapshot %s --stateful: %w%s", snap, err, logTail(filepath.Join(src.b.ctr, "log")))
		}
		src.b.snaps[snap] = true
		defer src.b.deleteSnapshot(snap)
		// Writes since the snapshot are to go: acknowledged before the
		// restore starts, so that the gap is the restore's.
		for _, c := range s.clients {
			if _, err := c.c.waitAck(time.Now(), time.Minute); err != nil {
				return err
			}
		}
	}
	reconnects, broke, pids := map[string]int{}, map[string]int{}, map[string]string{}
	for _, c := range s.clients {
		reconnects[c.name] = c.c.reconnectCount()
		broke[c.name] = c.c.brokeCount()
		pid, err := src.b.mainPID(c.unit)
		if err != nil {
			return err
		}
		pids[c.name] = pid
	}
	where := src.name
	t0 := time.Now()
	var err error
	switch op {
	case svcRaw:
		// The migration part's raw side, which needs nothing of a
		// migration's state: its steps' times go unused here.
		ms := migSample{run: run}
		err = (&migBench{}).rawInPlace(src, &ms)
	case svcStop:
		if _, err = src.b.ctlUntil("stop-stateful", "STOPPED"); err == nil {
			_, err = src.b.ctlUntil("start", "RUNNING")
		}
	case svcRestore:
		// The restored processes hold connections from the snapshot's
		// time, which the clients' ends no longer match.
		for _, c := range s.clients {
			c.c.drop()
		}
		_, err = src.b.ctlUntil("restore svc-"+fmt.Sprint(run), "RUNNING")
	case svcMove:
		dst := s.hosts[1-s.at]
		where = src.name + " -> " + dst.name
		if err = tree.Ctl(src.b.ctr, "move "+dst.name); err == nil {
			s.at = 1 - s.at
			dst.b.rootfs = rootfsOf(dst.b.cfg.lxcpath, dst.b.cfg.name)
			err = tree.WaitStatus(dst.b.ctr, "RUNNING", statusTimeout)
		}
	}
	t1 := time.Now()
	if err != nil {
		return fmt.Errorf("%w%s", err, logTail(filepath.Join(s.hosts[s.at].b.ctr, "log")))
	}
	for _, c := range s.clients {
		if _, err := c.c.waitAck(t1, 2*time.Minute); err != nil {
			return fmt.Errorf("after the operation: %w", err)
		}
		gap, before, ok := c.c.gap(t0, t1)
		if !ok {
			return fmt.Errorf("%s: no write acknowledged before the operation", c.name)
		}
		ref, ok := refs[c.name]
		if !ok {
			ref = before.value
		}
		now, refused, err := c.c.readNow()
		if err != nil {
			return fmt.Errorf("%s: reading its value after the operation (%d connections refused): %w", c.name, refused, err)
		}
		// Restored, not started again (a restore: the snapshot's
		// process, which is the one that ran before it).
		if pid, err := s.hosts[s.at].b.mainPID(c.unit); err != nil || pid != pids[c.name] {
			return fmt.Errorf("%s's main PID is %q after the operation, was %s: started again, not restored (%v)", c.unit, pid, pids[c.name], err)
		}
		if now < ref {
			return fmt.Errorf("%s holds %d after the operation, but %d had been acknowledged: acknowledged writes lost", c.name, now, ref)
		}
		x := svcSample{run: run, op: op, service: c.name, where: where, total: t1.Sub(t0), gap: gap,
			before: ref, after: now, reconnects: c.c.reconnectCount() - reconnects[c.name], refused: refused}
		s.samples = append(s.samples, x)
		fmt.Fprintf(os.Stderr, "ctrfs-bench: services round %d %-12s %-10s on %s: %.3fs, downtime %.3fs (client), acknowledged %d, holds %d, %d reconnection(s), %d new connection(s) refused before that read\n",
			run, op, c.name, where, x.total.Seconds(), x.gap.Seconds(), x.before, x.after, x.reconnects, x.refused)
		if why := c.c.brokeSince(broke[c.name]); len(why) > 0 {
			fmt.Fprintf(os.Stderr, "ctrfs-bench:   %s's connections broke: %s\n", c.name, strings.Join(why, "; "))
		}
	}
	return nil
}

// report prints every operation, then min/median/max per operation and
// service, raw beside ctrfs.
func (s *svcBench) report(w io.Writer) {
	fmt.Fprintf(w, "\nservices, debian container, %d round(s); downtime (client): longest gap between writes acknowledged to a client on this host over one TCP connection, one write every %s; %s\n\n",
		s.cfg.runs, ackPause, loadAverage())
	fmt.Fprintf(w, "%-4s %-12s %-11s %-24s %8s %8s %12s %12s %10s %8s\n", "run", "operation", "service", "host", "total s", "down s", "acknowledged", "holds after", "reconnects", "refused")
	for _, x := range s.samples {
		fmt.Fprintf(w, "%-4d %-12s %-11s %-24s %8.3f %8.3f %12d %12d %10d %8d\n", x.run, x.op, x.service, x.where,
			x.total.Seconds(), x.gap.Seconds(), x.before, x.after, x.reconnects, x.refused)
	}
	fmt.Fprintln(w, "(acknowledged: the last write acknowledged before the operation, before the snapshot for a restore;")
	fmt.Fprintln(w, " holds after: what the service holds after it, read over a new connection; reconnects: connections the")
	fmt.Fprintln(w, " client had to open again: a restore goes back to the snapshot's connections, so it always has them;")
	fmt.Fprintln(w, " refused: new connections refused, after the client's first acknowledged write, before that read got one;")
	fmt.Fprintln(w, " every service's main PID is the one from before: restored, not started again)")

	fmt.Fprintf(w, "\n%-24s %-11s %23s %23s\n", "min/median/max", "service", "downtime s (client)", "total s")
	for _, op := range []string{svcRaw, svcStop, svcRestore, svcMove} {
		for _, c := range s.clients {
			var g, t []float64
			for _, x := range s.samples {
				if x.op == op && x.service == c.name {
					g, t = append(g, x.gap.Seconds()), append(t, x.total.Seconds())
				}
			}
			if len(g) == 0 {
				continue
			}
			label := op
			if op == svcRaw {
				label = op + " (floor)"
			}
			fmt.Fprintf(w, "%-24s %-11s %23s %23s\n", label, c.name, spread(g), spread(t))
		}
	}
	fmt.Fprintf(w, "\nno acknowledged write lost: %d checks after %d operations\n", len(s.samples), len(s.samples)/max(1, len(s.clients)))
	if s.pgWhy != "" {
		fmt.Fprintf(w, "postgresql: %s\n", s.pgWhy)
	}
}

// attach runs a command in the container, as lxc-attach does.
func (b *bench) attach(args ...string) (string, error) {
	out, err := exec.Command("lxc-attach", append([]string{"-P", b.cfg.lxcpath, "-n", b.cfg.name, "--"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// mainPID is the main PID of a systemd unit in the container.
func (b *bench) mainPID(unit string) (string, error) {
	out, err := b.attach("systemctl", "show", "-p", "MainPID", "--value", unit)
	if err != nil || out == "" || out == "0" {
		return "", fmt.Errorf("the main PID of %s in %s: %q (%v)", unit, b.cfg.name, out, err)
	}
	return out, nil
}
