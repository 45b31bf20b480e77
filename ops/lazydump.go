package ops

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ctrfs/images"
)

// The source's side of a post-copy move (see cluster/postcopy.go): a
// `criu dump --lazy-pages --leave-stopped` whose page server hands out the
// memory of the frozen tasks until the target has pulled every page.
//
// What CRIU does with the tasks when that dump ends (cr-dump.c
// cr_dump_finish, page-xfer.c page_server_serve): whenever the page
// server's connection closes, cleanly or because the target died, the
// dump counts as a success and the tasks get the final state, which
// --leave-stopped makes SIGSTOP (without it CRIU kills them); a transfer
// error lets them run again. In both cases their network stays locked
// (CRIU unlocks it before the lazy transfer starts only when the tasks are
// to run on), and a CRIU killed mid-transfer leaves them in the frozen
// freezer cgroup. So the tasks are never lost to CRIU, and
// ResumeAfterLazyDump undoes whichever state they are in.

// LazyDump is a container's lazy dump under way.
type LazyDump struct {
	o    *Outgoing
	Dir  string // the images (all but the lazy memory) and dump.log
	done chan error
	end  *error // the helper's result, once it has exited
}

// lazyServing is what CRIU logs once its lazy page server listens.
const lazyServing = "Starting lazy pages server"

// StartLazyDump dumps the running container lazily, its page server
// listening on addr:port and taking only a connection whose certificate
// chains to creds' CA (pagetls.go), and returns once the server listens:
// the container is down from here. If the dump fails before that, CRIU
// has let the tasks run on: the container is RUNNING and the error says
// why.
func (o *Outgoing) StartLazyDump(addr string, port int, creds *PageServerTLS) (*LazyDump, error) {
	if err := o.m.requireStatusOf(o.name, "move --post-copy", "RUNNING"); err != nil {
		return nil, err
	}
	dir, err := o.m.stagingDir(o.name, "lazy", 16<<20)
	if err != nil {
		return nil, newError(ErrFailed, "prepare post-copy move of "+o.name, err)
	}
	tlsDir, err := o.m.stageTLS(o.name, creds)
	if err != nil {
		os.RemoveAll(dir)
		return nil, newError(ErrFailed, "prepare the page server's TLS for "+o.name, err)
	}
	pausePoint("postcopy-freeze")
	d := &LazyDump{o: o, Dir: dir, done: make(chan error, 1)}
	oc := &opContext{}
	go func() {
		err := o.m.runCRIUHelper(oc, o.m.imagesSizeHint(o.name), "checkpoint-lazy", o.name, dir, addr, strconv.Itoa(port), tlsDir)
		os.RemoveAll(tlsDir) // its key is not left behind the CRIU that used it
		d.done <- err
	}()
	log := filepath.Join(dir, "dump.log")
	for !logHas(log, lazyServing) {
		if ended, err := d.Ended(); ended {
			if err == nil {
				err = fmt.Errorf("CRIU ended before serving any page")
			}
			os.RemoveAll(dir)
			return nil, o.m.dumpFailed(o.name, err, criuLog(log, oc.log))
		}
		time.Sleep(5 * time.Millisecond)
	}
	pausePoint("postcopy-serving", net.JoinHostPort(addr, strconv.Itoa(port)))
	return d, nil
}

// Ended says whether the dump has ended, and how: nil once every page was
// pulled or the connection closed (the tasks are stopped), an error after
// a transfer error or a killed CRIU (the tasks run, or are frozen).
func (d *LazyDump) Ended() (bool, error) {
	if d.end != nil {
		return true, *d.end
	}
	select {
	case err := <-d.done:
		d.end = &err
		return true, err
	default:
		return false, nil
	}
}

// Images puts the dump's images into the store: a manifest that holds its
// chunks until the caller releases it.
func (d *LazyDump) Images() (*images.Manifest, error) {
	mf, _, err := d.o.m.images.ImportDir(d.Dir)
	if err != nil {
		return nil, newError(ErrFailed, "store the post-copy dump of "+d.o.name, err)
	}
	return mf, nil
}

// Stop ends the dump if it still runs: its CRIU is killed, which leaves
// the tasks frozen (ResumeAfterLazyDump thaws them). It returns once the
// dump has ended, and removes the images.
func (d *LazyDump) Stop() {
	defer os.RemoveAll(d.Dir)
	if ended, _ := d.Ended(); ended {
		return
	}
	for _, pid := range criuPids(d.Dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	err := <-d.done
	d.end = &err
}

// StopLazyDump stops the CRIU of a lazy dump into dir left by a daemon
// that died (see LazyDump.Stop), and waits until it is gone.
func StopLazyDump(dir string) {
	for i := 0; i < 100; i++ {
		pids := criuPids(dir)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.RemoveAll(dir)
}

// ExplainCRIU says why the CRIU run that wrote log failed, or "".
func ExplainCRIU(log []byte) string { return explainCRIU(log) }

// Log is CRIU's log of the dump.
func (d *LazyDump) Log() []byte {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dump.log"))
	return b
}

// criuPids finds the CRIU processes working on the image directory dir:
// `-D dir` on their command line.
func criuPids(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "criu" {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if (args[i] == "-D" || args[i] == "--images-dir") && filepath.Clean(args[i+1]) == filepath.Clean(dir) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// holdingPids are the processes other than this one and its parent that
// hold a file in dir open: CRIU's restore, and the container's tasks that
// it has not finished restoring, which keep its log open until then. The
// link is matched on dir's base name (random, see freshDir), since a task
// in the container's mount namespace sees the path from there.
func holdingPids(dir string) []int {
	mark := "/" + filepath.Base(dir) + "/"
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || pid == os.Getppid() {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && strings.Contains(link, mark) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// ResumeAfterLazyDump brings back the container whose lazy dump ended
// without the target taking it (see the top of this file): its cgroup
// thawed, its tasks continued, the locks CRIU put in its network
// namespace removed. The dump must have ended (LazyDump.Stop), or CRIU
// could stop the tasks again after this.
//
// TCP connections that were established at the dump stay in CRIU's repair
// mode and do not recover; new connections work.
func (o *Outgoing) ResumeAfterLazyDump() error {
	return o.m.ResumeAfterLazyDump(o.name)
}

// ResumeAfterLazyDump is Outgoing.ResumeAfterLazyDump for a caller that
// holds the container's lock (settling a move after a crash).
func (m *Manager) ResumeAfterLazyDump(name string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	pid := c.InitPid()
	if !c.Running() || pid <= 0 {
		return newError(ErrFailed, fmt.Sprintf("%s has no processes any more: its memory was lost", name), nil)
	}
	if err := thawAfterDump(c, pid); err != nil {
		return newError(ErrFailed, "thaw the processes of "+name+" after CRIU's dump", err)
	}
	if err := continueNamespace(pid); err != nil {
		return newError(ErrFailed, "continue the processes of "+name, err)
	}
	if err := unlockNetwork(pid); err != nil {
		return newError(ErrFailed, "unlock the network of "+name+" after CRIU's dump", err)
	}
	m.Announce(name)
	return nil
}

// continueNamespace sends SIGCONT to every process in the pid namespace
// whose init is pid.
func continueNamespace(pid int) error {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return err
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err == nil && other == ns {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}
	return nil
}

// unlockNetwork removes what CRIU's network lock (iptables, its default
// method) put in the network namespace of pid: the CRIU chain and the
// INPUT and OUTPUT rules that jump to it, for IPv4 and IPv6
// (criu/net.c iptables_network_lock_internal). A namespace without them
// is left as it is.
func unlockNetwork(pid int) error {
	netns := fmt.Sprintf("--net=/proc/%d/ns/net", pid)
	var errs []string
	for _, tool := range []string{"iptables", "ip6tables"} {
		run := func(args ...string) ([]byte, error) {
			return exec.Command("nsenter", append([]string{netns, tool, "-w"}, args...)...).CombinedOutput()
		}
		if _, err := run("-n", "-L", "CRIU"); err != nil {
			continue // no lock
		}
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			for i := 0; i < 8; i++ {
				if _, err := run("-D", chain, "-j", "CRIU"); err != nil {
					break
				}
			}
		}
		for _, args := range [][]string{{"-F", "CRIU"}, {"-X", "CRIU"}} {
			if out, err := run(args...); err != nil {
				errs = append(errs, fmt.Sprintf("%s %s: %v: %s", tool, strings.Join(args, " "), err, bytes.TrimSpace(out)))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
