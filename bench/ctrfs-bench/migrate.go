package main

// The migration benchmark (issue 5), on two hosts of one cluster: the
// bench's daemon (--mount) and a peer (--peer-mount). One container, whose
// memhog holds --mib MiB and rewrites --rewrite-rate MiB/s of it steadily,
// is moved back and forth by two methods, --runs times each:
//
//	live           `move PEER` written to ctl of the running container: ctrfs
//	               copies rootfs, snapshots and saved state while it runs,
//	               then checkpoints it (stop-stateful), sends what changed and
//	               restores it on the target.
//	stop-and-copy  `stop-stateful`, then `move PEER` (a cold move of the
//	               stopped container with its saved state), then `start`
//	               written to ctl on the target.
//	live full      (--compare-full-dumps) `move PEER --full-dumps`: a live
//	               move whose precopy rounds are whole dumps even where the
//	               hosts track dirty memory and the live moves pre-dump.
//
// Each live move prints its precopy: the kind of rounds, the bytes each
// sent, and the bytes sent while the container was down (freeze-sent-bytes
// in the target's info), which pre-dumps are to shrink.
//
// Odd rounds move it live from the bench's host to the peer and bring it
// back by stop-and-copy; even rounds do stop-and-copy first and live second,
// so each method runs in both directions and in both orders.
//
// Each round ends with a third measurement that is not a move:
//
//	raw in place   `lxc-checkpoint -s` and `lxc-checkpoint -r` on the host
//	               that has the container, without ctrfs: no copy, no store,
//	               no network. A live move must dump all memory after the
//	               freeze where CRIU cannot track dirty memory (see
//	               dirtyTracking), so this is the least downtime any such
//	               move can have on this machine: the floor the targets are
//	               to be read against.
//
// Downtime is measured from outside: a prober connects to the container's
// counter service (port 8080 of the default template) every
// --probe-interval and records when each answer arrives; the downtime of a
// move is the longest gap between answers from the last one before the move
// began to the first one after it finished. ctrfs's own figure is printed
// beside it: downtime-seconds in the target's info (from the start of the
// checkpoint until the target finished restoring) for a live move, the
// operations' own seconds added up for stop-and-copy.
//
// After every move the container must be RUNNING on the target and gone
// from the source, with the same IPv4 address; its counter must have
// continued (the answers after the move are not below the last before it);
// and memhog must be the same process with intact memory. Its memory
// changes all the time, so no fixed checksum can be compared; instead: the
// same pid, its `ready` file unchanged, its sum file's seq and rate-gen
// continuing past where they were when the move began (a respawned memhog
// starts them again from 1) and bad-blocks 0 (every 64 KiB block holds what
// memhog last wrote there).

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ctrfs/internal/tree"
)

// The targets: a live migration's downtime at most 300 ms, and at
// most a quarter of stop-and-copy's.
const (
	targetDowntime      = 300 * time.Millisecond
	targetDowntimeRatio = 0.25
)

const (
	modeLive       = "live"
	modeLiveFull   = "live full" // `move PEER --full-dumps`
	modePostCopy   = "post-copy" // `move PEER --post-copy`: CRIU lazy pages
	modeStopCopy   = "stop-and-copy"
	modeRawInPlace = "raw in place"
)

// migHost is one host of the migration part, with the container as that
// host's mount shows it.
type migHost struct {
	name string // MOUNT/host
	b    *bench
}

// step is one command of a move and how long its write took.
type step struct {
	what   string
	took   time.Duration
	failed bool
}

// migSample is one move.
type migSample struct {
	run      int
	mode     string
	from, to string
	total    time.Duration // all of the move's commands
	steps    []step
	gap      time.Duration // the longest gap between answers of the service
	failed   int           // connections that failed or went unanswered meanwhile
	ctrfs    float64       // ctrfs's own downtime figure; -1 unknown
	precopy  float64       // precopy-seconds; -1 unknown
	sent     int64         // move-sent-bytes; -1 unknown
	frozen   int64         // freeze-sent-bytes; -1 unknown
	// The counter's last answer before the move and the highest soon
	// after it; memhog's rate-gen when the move began and after it.
	countBefore, countAfter int
	genBefore, genAfter     int
	// Earlier attempts of this move that failed and were tried again (see
	// retryable): one line each.
	retried []string
}

type migBench struct {
	cfg    *config // the migration container's (name, memhog's rate)
	hosts  [2]*migHost
	at     int // the host that has the container
	ip     string
	ready  string // memhog's `ready` file as it was after setup
	probe  *prober
	dirty  string // what CRIU says about dirty-memory tracking
	rounds []migSample
}

func runMigration(cfg *config, work string, interrupts chan os.Signal) error {
	if cfg.peerLxcpath == "" {
		return errors.New("--peer-mount needs --peer-lxcpath (the peer daemon's LXC path)")
	}
	if _, err := os.Stat(filepath.Join(cfg.peerMount, "containers")); err != nil {
		return fmt.Errorf("no ctrfs mount at --peer-mount %s: %w", cfg.peerMount, err)
	}
	mcfg := *cfg
	mcfg.name = cfg.name + "-mig"
	mcfg.memhogRate = cfg.rewriteRate
	mcfg.store = ""
	pcfg := mcfg
	pcfg.mount, pcfg.lxcpath = cfg.peerMount, cfg.peerLxcpath
	m := &migBench{cfg: &mcfg, hosts: [2]*migHost{
		{b: newBench(&mcfg, work, interrupts)},
		{b: newBench(&pcfg, work, interrupts)},
	}}
	for _, h := range m.hosts {
		name, err := tree.Host(h.b.cfg.mount)
		if err != nil {
			return err
		}
		h.name = name
	}
	if m.hosts[0].name == m.hosts[1].name {
		return fmt.Errorf("--mount and --peer-mount are the same host %q", m.hosts[0].name)
	}
	m.dirty = dirtyTracking()
	fmt.Printf("\nctrfs-bench: migration between %s (%s) and %s (%s): %s container %q, memhog holding %d MiB and rewriting %g MiB/s, %d round(s) of live and stop-and-copy\n",
		m.hosts[0].name, cfg.mount, m.hosts[1].name, cfg.peerMount, kindOf(cfg), mcfg.name, cfg.mib, cfg.rewriteRate, cfg.runs)
	fmt.Printf("ctrfs-bench: CRIU dirty-memory tracking: %s\n", m.dirty)
	if err := m.waitCluster(30 * time.Second); err != nil {
		return err
	}
	if _, err := os.Stat(m.hosts[1].b.ctr); err == nil {
		return fmt.Errorf("%s already has a container %q: pick another --name", m.hosts[1].name, mcfg.name)
	}

	a := m.hosts[0].b
	created, err := a.setup()
	if created && !cfg.keep {
		// Wherever it ended up: a failed move leaves it on one host.
		defer func() {
			for _, h := range m.hosts {
				h.b.destroy()
			}
		}()
	}
	if err != nil {
		return err
	}
	m.hosts[1].b.readyPid, m.hosts[1].b.readySum = a.readyPid, a.readySum
	ready, err := os.ReadFile(filepath.Join(a.memhogDir(), "ready"))
	if err != nil {
		return err
	}
	m.ready = string(ready)
	if m.ip = tree.Info(a.ctr)["ipv4"]; m.ip == "" {
		return fmt.Errorf("%s has no ipv4 in its info", a.ctr)
	}

	m.probe = startProber(net.JoinHostPort(m.ip, "8080"), cfg.probeInterval)
	defer m.probe.close()
	if _, err := m.probe.waitAnswer(time.Now(), 15*time.Second); err != nil {
		return fmt.Errorf("the counter service of %s: %w", mcfg.name, err)
	}
	// A few seconds of steady state: the counter well past what a
	// restarted one would show, memhog rewriting.
	time.Sleep(3 * time.Second)

	for i := 1; i <= cfg.runs; i++ {
		modes := []string{modeLive, modeStopCopy}
		if i%2 == 0 {
			modes[0], modes[1] = modes[1], modes[0]
		}
		if postCopyMeasured(cfg) {
			modes = append(modes, modePostCopy)
		}
		if cfg.compareFullDumps {
			modes = append(modes, modeLiveFull)
		}
		for _, mode := range append(modes, modeRawInPlace) {
			s, err := m.move(i, mode)
			if err != nil {
				return fmt.Errorf("round %d, %s %s -> %s: %w", i, mode, s.from, s.to, err)
			}
			m.rounds = append(m.rounds, s)
			fmt.Fprintf(os.Stderr, "ctrfs-bench: round %d %-13s %s -> %s: %.3fs, downtime %.3fs (client, %d connections failed), %s (ctrfs); counter %d -> %d, memhog rate-gen %d -> %d, intact; %d failed attempt(s) before\n",
				i, mode, s.from, s.to, s.total.Seconds(), s.gap.Seconds(), s.failed, secondsOrUnknown(s.ctrfs),
				s.countBefore, s.countAfter, s.genBefore, s.genAfter, len(s.retried))
		}
	}
	m.report(os.Stdout)
	cfg.summary.addMigration(m.rounds)
	if cfg.keep {
		fmt.Printf("\n--keep: container %s left running\n", m.hosts[m.at].b.ctr)
	}
	return nil
}

// waitCluster waits until each host lists the other under hosts/ as alive.
func (m *migBench) waitCluster(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for i, h := range m.hosts {
			peer := m.hosts[1-i].name
			if tree.Info(filepath.Join(h.b.cfg.mount, "hosts", peer))["status"] != "alive" {
				ok = false
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s and %s do not see each other as alive under hosts/ after %s (same --secret-file? --join?)",
				m.hosts[0].name, m.hosts[1].name, timeout)
		}
		if err := m.hosts[0].b.checkInterrupt(); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Moves whose checkpoint fails because CRIU could not freeze the container
// (see retryable) are tried again, this many times in all, after a pause.
const (
	moveAttempts   = 6
	moveRetryPause = 3 * time.Second
)

// move moves the container from where it is to the other host by mode,
// times it, measures the downtime and checks the container on the target.
// A move whose checkpoint failed in the way retryable describes, leaving
// the container running where it was, is tried again; the failed attempts
// are counted in the sample but not in its times.
func (m *migBench) move(run int, mode string) (migSample, error) {
	var failed []string
	for attempt := 1; ; attempt++ {
		s, retry, err := m.moveOnce(run, mode)
		s.retried = failed
		if err == nil || !retry || attempt == moveAttempts {
			if err != nil && retry {
				err = fmt.Errorf("%w\n(the checkpoint failed like this %d times in a row)", err, attempt)
			}
			return s, err
		}
		reason := firstLine(err.Error())
		failed = append(failed, reason)
		fmt.Fprintf(os.Stderr, "ctrfs-bench: round %d %s %s -> %s: attempt %d failed, the container still runs on %s: CRIU could not freeze it in time (%s); trying again in %s\n",
			run, mode, s.from, s.to, attempt, s.from, criuFreezeError(err.Error()), moveRetryPause)
		time.Sleep(moveRetryPause)
	}
}

// retryable says whether a failed command of a move is CRIU's freeze
// timeout, with the container still RUNNING on the source and not on the
// target: the dump gave up after its freeze timeout because a task could
// not be seized (compel's "Unseizable non-zombie ... state D"). Seen here
// when the default template's `nc -ll -e` listener is inside vfork() for a
// connection while CRIU seizes the tree: its vfork child is stopped before
// exec, so the parent stays in an uninterruptible wait. A busy service (the
// prober connects every few ms) makes that likely; ctrfs reports the
// failure and leaves the container running, as it must.
func (m *migBench) retryable(src, dst *migHost, err error) bool {
	if criuFreezeError(err.Error()) == "" {
		return false
	}
	if st, serr := tree.Status(src.b.ctr); serr != nil || st != "RUNNING" {
		return false
	}
	if src == dst { // raw in place
		return true
	}
	_, serr := os.Stat(dst.b.ctr)
	return errors.Is(serr, fs.ErrNotExist)
}

// criuFreezeError is CRIU's error line about a task it could not seize in
// a log, or "".
func criuFreezeError(log string) string {
	for _, l := range strings.Split(log, "\n") {
		if i := strings.Index(l, "Unseizable"); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	if strings.Contains(log, "Timeout reached. Try to interrupt") {
		return "Timeout reached"
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// moveOnce is one attempt of move; retry says whether a failure is one that
// move tries again.
func (m *migBench) moveOnce(run int, mode string) (s migSample, retry bool, err error) {
	src, dst := m.hosts[m.at], m.hosts[1-m.at]
	if mode == modeRawInPlace {
		dst = src
	}
	s = migSample{run: run, mode: mode, from: src.name, to: dst.name, ctrfs: -1, precopy: -1, sent: -1, frozen: -1}
	s, err = m.moveSteps(s, src, dst)
	if err != nil && len(s.steps) > 0 && s.steps[len(s.steps)-1].failed {
		retry = m.retryable(src, dst, err)
	}
	return s, retry, err
}

// moveSteps runs the commands of one move and checks the outcome.
func (m *migBench) moveSteps(s migSample, src, dst *migHost) (migSample, error) {
	mode := s.mode
	if err := src.b.checkInterrupt(); err != nil {
		return s, err
	}
	// Start from steady state: the service answers now.
	if _, err := m.probe.waitAnswer(time.Now(), 10*time.Second); err != nil {
		return s, fmt.Errorf("before the move: %w", err)
	}
	mark := tree.ReadKV(filepath.Join(src.b.memhogDir(), "sum"))
	seq0, _ := strconv.Atoi(mark["seq"])
	s.genBefore, _ = strconv.Atoi(mark["rate-gen"])

	var info map[string]string
	run1 := func(h *migHost, cmd string) error {
		t := time.Now()
		err := tree.Ctl(h.b.ctr, cmd)
		s.steps = append(s.steps, step{what: strings.Fields(cmd)[0], took: time.Since(t), failed: err != nil})
		if err != nil {
			// The container's log: CRIU's, of the checkpoint or restore.
			return fmt.Errorf("%w%s", err, logTail(filepath.Join(h.b.ctr, "log")))
		}
		return nil
	}
	t0 := time.Now()
	switch mode {
	case modeLive, modeLiveFull:
		cmd := "move " + dst.name
		if mode == modeLiveFull {
			cmd += " --full-dumps"
		}
		if err := run1(src, cmd); err != nil {
			return s, err
		}
		info = tree.Info(dst.b.ctr)
	case modePostCopy:
		if err := run1(src, "move "+dst.name+" --post-copy"); err != nil {
			return s, err
		}
		info = tree.Info(dst.b.ctr)
	case modeStopCopy:
		if err := run1(src, "stop-stateful"); err != nil {
			return s, err
		}
		stopSecs := parseFloat(tree.Info(src.b.ctr)["last-op-seconds"])
		if err := run1(src, "move "+dst.name); err != nil {
			return s, err
		}
		info = tree.Info(dst.b.ctr)
		if err := run1(dst, "start"); err != nil {
			return s, err
		}
		startInfo := tree.Info(dst.b.ctr)
		if startInfo["last-op"] == "start" && stopSecs >= 0 && parseFloat(info["move-seconds"]) >= 0 && parseFloat(startInfo["last-op-seconds"]) >= 0 {
			s.ctrfs = stopSecs + parseFloat(info["move-seconds"]) + parseFloat(startInfo["last-op-seconds"])
		}
	case modeRawInPlace:
		if err := m.rawInPlace(src, &s); err != nil {
			return s, err
		}
	}
	t1 := time.Now()
	s.total = t1.Sub(t0)
	if src != dst {
		m.at = 1 - m.at
	}

	// The first answer after the move ends the downtime.
	back, err := m.probe.waitAnswer(t1, 30*time.Second)
	if err != nil {
		return s, fmt.Errorf("after the move: %w", err)
	}
	var ok bool
	if s.gap, s.countBefore, s.failed, ok = m.probe.gap(t0, back.at); !ok {
		return s, errors.New("the prober had no answer from before the move")
	}

	wantMode := map[string]string{modeLive: "live", modeLiveFull: "live", modeStopCopy: "cold", modePostCopy: "post-copy"}[mode]
	if mode != modeRawInPlace && info["move-mode"] != wantMode {
		return s, fmt.Errorf("%s's info after the move has move-mode %q, want %s (info: %v)", dst.name, info["move-mode"], wantMode, info)
	}
	if mode == modePostCopy {
		s.ctrfs = parseFloat(info["downtime-seconds"])
		fmt.Fprintf(os.Stderr, "ctrfs-bench:   post-copy phases (s): %s\n", strings.Join(phasesOf(info,
			"freeze-send-seconds", "handover-seconds", "target-install-seconds", "target-restore-seconds", "postcopy-fill-seconds"), " "))
	}
	if mode == modeLive || mode == modeLiveFull {
		s.ctrfs = parseFloat(info["downtime-seconds"])
		if n, err := strconv.ParseInt(info["freeze-sent-bytes"], 10, 64); err == nil {
			s.frozen = n
		}
		fmt.Fprintf(os.Stderr, "ctrfs-bench:   precopy: %s rounds (%s), bytes sent per round %s, pages per round %s; sent while down %s bytes, %s pages dumped\n",
			info["precopy-mode"], orNone(info["precopy-mode-why"]), info["precopy-round-bytes"], info["precopy-round-pages"],
			info["freeze-sent-bytes"], info["freeze-criu-pages-written"])
		fmt.Fprintf(os.Stderr, "ctrfs-bench:   downtime phases (s): %s\n", strings.Join(phasesOf(info,
			"freeze-checkpoint-seconds", "freeze-criu-frozen-seconds", "freeze-dump-seconds", "freeze-store-seconds", "freeze-send-seconds", "freeze-pack-seconds", "handover-seconds",
			"target-prepare-seconds", "target-prepare-state-seconds", "target-install-seconds", "target-restore-seconds",
			"target-update-seconds", "target-criu-restore-seconds", "target-lazy-wait-seconds", "target-commit-seconds", "precopy-frozen-seconds"), " "))
	}
	s.precopy = parseFloat(info["precopy-seconds"])
	if n, err := strconv.ParseInt(info["move-sent-bytes"], 10, 64); err == nil {
		s.sent = n
	}

	// Where it is and how.
	if st, err := tree.Status(dst.b.ctr); err != nil || st != "RUNNING" {
		return s, fmt.Errorf("the container is %q on %s after the move, not RUNNING (%v)", st, dst.name, err)
	}
	if _, err := os.Stat(src.b.ctr); src != dst && !errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("the container is still on %s after the move (%v)", src.name, err)
	}
	if ip := tree.Info(dst.b.ctr)["ipv4"]; ip != m.ip {
		return s, fmt.Errorf("the container's ipv4 on %s is %q, was %s", dst.name, ip, m.ip)
	}
	dst.b.rootfs = rootfsOf(dst.b.cfg.lxcpath, dst.b.cfg.name)
	if err := m.checkMemhog(dst, seq0, &s); err != nil {
		return s, err
	}
	// By now the service has answered for a while from the target.
	s.countAfter = m.probe.maxCount(back.at, time.Now())
	if s.countAfter < s.countBefore {
		return s, fmt.Errorf("the counter went from %d before the move to at most %d after it: the container started afresh instead of being restored",
			s.countBefore, s.countAfter)
	}
	return s, nil
}

// rawInPlace checkpoints the container with raw lxc-checkpoint and
// restores it on the same host (see modeRawInPlace). A failed restore is
// tried once more, so that the container is not left stopped.
func (m *migBench) rawInPlace(h *migHost, s *migSample) error {
	b := h.b
	if err := b.prepareRawRestore(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(b.cfg.dumpDir, "ctrfs-bench-raw-in-place-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	raw := func(what, logName string, env []string, flag, logFile string) error {
		t := time.Now()
		err := b.lxcCheckpoint(fmt.Sprintf("%s-%d", logName, s.run), env, dir, flag)
		s.steps = append(s.steps, step{what: what, took: time.Since(t), failed: err != nil})
		if err != nil {
			return fmt.Errorf("lxc-checkpoint %s: %w%s", flag, err, logTail(filepath.Join(dir, logFile)))
		}
		return nil
	}
	if err := raw("lxc-checkpoint-s", "in-place-dump", nil, "-s", "dump.log"); err != nil {
		return err
	}
	if err := tree.WaitStatus(b.ctr, "STOPPED", statusTimeout); err != nil {
		return fmt.Errorf("after lxc-checkpoint -s: %w", err)
	}
	env := []string{"CRIU_CONFIG_FILE=" + b.criuConf}
	if err := b.rawImagesReadable(dir); err != nil {
		return err
	}
	err = raw("lxc-checkpoint-r", "in-place-restore", env, "-r", "restore.log")
	if err != nil {
		if again := raw("lxc-checkpoint-r", "in-place-restore-again", env, "-r", "restore.log"); again != nil {
			return fmt.Errorf("%w; restoring again failed too: %v", err, again)
		}
	}
	return tree.WaitStatus(b.ctr, "RUNNING", statusTimeout)
}

// checkMemhog checks that memhog on the target is the process that ran on
// the source, with intact memory, rewriting on from where it was: it waits
// for a sum file written after the move (seq past the one the target's copy
// of the rootfs has, which is at least seq0) that shows a rewrite step
// since (rate-gen past the one before the move).
func (m *migBench) checkMemhog(h *migHost, seq0 int, s *migSample) error {
	dir := h.b.memhogDir()
	ready, err := os.ReadFile(filepath.Join(dir, "ready"))
	if err != nil || string(ready) != m.ready {
		return fmt.Errorf("memhog's ready file changed (a new memhog filled its memory): %q, was %q (%v)", ready, m.ready, err)
	}
	first := tree.ReadKV(filepath.Join(dir, "sum"))
	seq1, err := strconv.Atoi(first["seq"])
	if err != nil || seq1 < seq0 {
		return fmt.Errorf("memhog's sum file is at seq %q, it was at %d before the move: memhog started again (%v)", first["seq"], seq0, first)
	}
	gen1, _ := strconv.Atoi(first["rate-gen"])
	deadline := time.Now().Add(3*h.b.cfg.interval + 15*time.Second)
	for {
		kv := tree.ReadKV(filepath.Join(dir, "sum"))
		seq, err := strconv.Atoi(kv["seq"])
		switch {
		case err != nil || seq < seq1:
			return fmt.Errorf("memhog's sum file went from seq %d to %q: memhog started again (%v)", seq1, kv["seq"], kv)
		case seq > seq1:
			gen, _ := strconv.Atoi(kv["rate-gen"])
			switch {
			case kv["pid"] != h.b.readyPid:
				return fmt.Errorf("memhog is a new process (pid %s, was %s): the restored one died and init respawned it", kv["pid"], h.b.readyPid)
			case kv["bad-blocks"] != "0":
				return fmt.Errorf("memhog's memory is damaged: %s blocks of 64 KiB differ from what it wrote there (%v)", kv["bad-blocks"], kv)
			case gen < gen1 || gen < s.genBefore:
				return fmt.Errorf("memhog's rate-gen is %d after the move, it was %d before and %d in the sum file the target got: it did not rewrite on from where it was",
					gen, s.genBefore, gen1)
			case gen > max(gen1, s.genBefore):
				// It has rewritten memory since it was restored.
				s.genAfter = gen
				return nil
			}
			// A sum file written before its next rewrite step: wait
			// for one written after it.
			seq1, gen1 = seq, gen
		}
		if time.Now().After(deadline) {
			st, _ := tree.Status(h.b.ctr)
			return fmt.Errorf("memhog did not re-checksum its memory on %s within %s (container %s, last sum file %v)",
				h.name, 3*h.b.cfg.interval+15*time.Second, st, kv)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// report prints every move, the medians per method, the ratios and the
// targets.
func (m *migBench) report(w io.Writer) {
	cfg := m.cfg
	fmt.Fprintf(w, "\nmigration, %s container, %d MiB memhog rewriting %g MiB/s, %d round(s); downtime (client): longest gap between answers of the container's service, polled every %s\n\n",
		kindOf(cfg), cfg.mib, cfg.rewriteRate, cfg.runs, cfg.probeInterval)
	fmt.Fprintf(w, "%-4s %-13s %-24s %8s %9s %9s %9s %14s %7s  %s\n",
		"run", "method", "from -> to", "total s", "down s", "ctrfs s", "precopy", "sent bytes", "retried", "steps (s)")
	retried, moves := 0, 0
	for _, s := range m.rounds {
		var steps []string
		for _, st := range s.steps {
			steps = append(steps, fmt.Sprintf("%s %.3f", st.what, st.took.Seconds()))
		}
		fmt.Fprintf(w, "%-4d %-13s %-24s %8.3f %9.3f %9s %9s %14s %7d  %s\n", s.run, s.mode, s.from+" -> "+s.to,
			s.total.Seconds(), s.gap.Seconds(), secondsOrUnknown(s.ctrfs), secondsOrUnknown(s.precopy), bytesOrNA(s.sent),
			len(s.retried), strings.Join(steps, " + "))
		retried += len(s.retried)
		moves += 1 + len(s.retried)
	}
	fmt.Fprintln(w, "(down s: seen by a client; ctrfs s: live, the target's downtime-seconds, from the start of the checkpoint")
	fmt.Fprintln(w, " until the target finished restoring; stop-and-copy, the stop-stateful, move and start operations' own seconds added up;")
	fmt.Fprintln(w, " retried: moves that failed although ctrfs retries dumps that CRIU could not freeze in time (the template's nc")
	fmt.Fprintln(w, " inside vfork() for a probe connection); they left it running where it was, and their times are not in the figures;")
	fmt.Fprintln(w, " dumps that ctrfs itself tried again are inside the figures; raw in place: no move, lxc-checkpoint -s and -r")
	fmt.Fprintln(w, " on the host that has the container, the floor below)")
	if retried > 0 {
		fmt.Fprintf(w, "checkpoints that failed that way: %d of %d attempts\n", retried, moves)
	}

	type med struct{ total, gap, ctrfs float64 }
	meds := map[string]med{}
	fmt.Fprintf(w, "\n%-15s %9s %20s %17s %22s\n", "median", "total s", "downtime s (client)", "downtime s (ctrfs)", "sent bytes")
	for _, mode := range m.modes() {
		var t, g, c []float64
		var sent []int64
		ctrfsKnown, sentKnown := true, true
		for _, s := range m.rounds {
			if s.mode != mode {
				continue
			}
			t, g, c = append(t, s.total.Seconds()), append(g, s.gap.Seconds()), append(c, s.ctrfs)
			sent = append(sent, s.sent)
			ctrfsKnown = ctrfsKnown && s.ctrfs >= 0
			sentKnown = sentKnown && s.sent >= 0
		}
		md := med{total: median(t), gap: median(g), ctrfs: -1}
		if ctrfsKnown {
			md.ctrfs = median(c)
		}
		sentMed := int64(-1)
		if sentKnown {
			sentMed = medianInt(sent)
		}
		meds[mode] = md
		fmt.Fprintf(w, "%-15s %9.3f %20.3f %17s %22s\n", mode, md.total, md.gap, secondsOrUnknown(md.ctrfs), bytesMiB(sentMed))
	}

	// Min and max beside the median: the machine may be shared and noisy.
	fmt.Fprintf(w, "\n%-15s %23s %23s\n", "min/median/max", "downtime s (client)", "downtime s (ctrfs)")
	for _, mode := range m.modes() {
		var g, c []float64
		for _, s := range m.rounds {
			if s.mode == mode {
				g, c = append(g, s.gap.Seconds()), append(c, s.ctrfs)
			}
		}
		fmt.Fprintf(w, "%-15s %23s %23s\n", mode, spread(g), spread(c))
	}

	live, sc := meds[modeLive], meds[modeStopCopy]
	fmt.Fprintln(w)
	fmt.Fprintf(w, "live/stop-and-copy total time:            %.3fx\n", live.total/sc.total)
	ratio := live.gap / sc.gap
	fmt.Fprintf(w, "live/stop-and-copy downtime (client):     %.3fx    target <= %.2fx    %s\n", ratio, targetDowntimeRatio, met(ratio <= targetDowntimeRatio))
	if live.ctrfs >= 0 && sc.ctrfs > 0 {
		fmt.Fprintf(w, "live/stop-and-copy downtime (ctrfs):      %.3fx\n", live.ctrfs/sc.ctrfs)
	}
	fmt.Fprintf(w, "live downtime (client):                   %.3f s   target <= %.3f s   %s\n", live.gap, targetDowntime.Seconds(), met(live.gap <= targetDowntime.Seconds()))
	if live.ctrfs >= 0 {
		fmt.Fprintf(w, "live downtime (ctrfs downtime-seconds):   %.3f s   target <= %.3f s   %s\n", live.ctrfs, targetDowntime.Seconds(), met(live.ctrfs <= targetDowntime.Seconds()))
	}
	fmt.Fprintf(w, "issue 5 target (live downtime <= %.0f ms and <= %.2f of stop-and-copy's, client): %s\n",
		targetDowntime.Seconds()*1000, targetDowntimeRatio, met(live.gap <= targetDowntime.Seconds() && ratio <= targetDowntimeRatio))
	fmt.Fprintf(w, "(CRIU dirty-memory tracking: %s)\n", m.dirty)
	for _, mode := range []string{modeLive, modeLiveFull} {
		var frozen []int64
		for _, s := range m.rounds {
			if s.mode == mode && s.frozen >= 0 {
				frozen = append(frozen, s.frozen)
			}
		}
		if len(frozen) > 0 {
			fmt.Fprintf(w, "%-16s sent while down (median): %s\n", mode, bytesMiB(medianInt(frozen)))
		}
	}
	// Issue 14: a post-copy move's downtime is the non-memory state's;
	// its memory follows while the container runs on the target.
	pc := meds[modePostCopy]
	if !postCopyMeasured(cfg) {
		fmt.Fprintln(w, "post-copy: not measured on debian containers: with both hosts on one kernel CRIU cannot checkpoint a systemd container moved post-copy again (docs/cluster.md, Post-copy), and the rounds after it would fail")
	} else {
		fmt.Fprintf(w, "post-copy downtime (client):              %.3f s   target <= %.3f s   %s\n", pc.gap, targetDowntime.Seconds(), met(pc.gap <= targetDowntime.Seconds()))
		if pc.ctrfs >= 0 {
			fmt.Fprintf(w, "post-copy downtime (ctrfs downtime-seconds): %.3f s   target <= %.3f s   %s\n", pc.ctrfs, targetDowntime.Seconds(), met(pc.ctrfs <= targetDowntime.Seconds()))
		}
	}
	floor := meds[modeRawInPlace]
	fmt.Fprintf(w, "\nfloor: raw lxc-checkpoint -s and -r in place, no ctrfs, no copy (client): %.3f s    (%.2fx the %.0f ms target)\n",
		floor.gap, floor.gap/targetDowntime.Seconds(), targetDowntime.Seconds()*1000)
	fmt.Fprintf(w, "live/floor downtime (client):             %.3fx    (what ctrfs's copying, storing and checks add to CRIU and LXC)\n", live.gap/floor.gap)
}

// dirtyTracking is what `criu check --feature mem_dirty_track` says: without
// it CRIU cannot pre-dump, and a live migration has to dump all memory
// after the container is frozen.
func dirtyTracking() string {
	out, err := exec.Command("criu", "check", "--feature", "mem_dirty_track").CombinedOutput()
	if err == nil {
		return "on (criu check --feature mem_dirty_track passes): pre-dump is possible"
	}
	msg := "criu check --feature mem_dirty_track fails"
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "Dirty tracking"); i >= 0 {
			msg = fmt.Sprintf("%q says criu check --feature mem_dirty_track", strings.TrimSpace(l[i:]))
		}
	}
	return "OFF (" + msg + "): no pre-dump; a live move dumps all memory after the freeze"
}

func parseFloat(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return v
}

func secondsOrUnknown(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", v)
}

// postCopyMeasured: post-copy rounds run on busybox containers only (see
// the known limit in docs/cluster.md, Post-copy).
func postCopyMeasured(c *config) bool { return c.template != templateDebian }

// orNone is s, or "none" for an empty s.
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// modes are the methods of the report's tables, in their order.
func (m *migBench) modes() []string {
	if m.cfg.compareFullDumps {
		return []string{modeLive, modeLiveFull, modeStopCopy, modePostCopy, modeRawInPlace}
	}
	return []string{modeLive, modeStopCopy, modePostCopy, modeRawInPlace}
}
