package ops

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/criulog"
)

// shutdownTimeout is how long a clean stop waits for init before killing.
const shutdownTimeout = 10 * time.Second

// Run carries out one ctl command on a container.
func (m *Manager) Run(name string, cmd Command) error {
	var fn func(*opContext) error
	switch cmd.Verb {
	case "start":
		fn = func(oc *opContext) error { return m.start(oc, name) }
	case "stop":
		fn = func(oc *opContext) error {
			if err := m.stop(name); err != nil {
				return err
			}
			return m.dropState(name)
		}
	case "stop-stateful":
		fn = func(oc *opContext) error { return m.stopStateful(oc, name, nil) }
	case "restart":
		fn = func(oc *opContext) error {
			if err := m.stop(name); err != nil {
				return err
			}
			if err := m.dropState(name); err != nil {
				return err
			}
			return m.start(oc, name)
		}
	case "freeze":
		fn = func(oc *opContext) error { return m.freeze(name) }
	case "unfreeze":
		fn = func(oc *opContext) error { return m.unfreeze(name) }
	case "snapshot":
		fn = func(oc *opContext) error { return m.snapshot(oc, name, cmd.Arg, cmd.Stateful) }
	case "restore":
		fn = func(oc *opContext) error { return m.restoreSnapshot(oc, name, cmd.Arg) }
	case "check":
		fn = func(oc *opContext) error { return m.check(oc, name) }
	default:
		fn = func(*opContext) error {
			return newError(ErrUnsupported, fmt.Sprintf("%q is not available on this host yet", cmd.Verb), nil)
		}
	}
	if !m.Exists(name) {
		return newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	return m.run(operation{name: name, what: cmd.Verb, fn: fn})
}

// requireStatus fails with ErrBusy unless the container is in one of want.
func (m *Manager) requireStatus(c *lxc.Container, verb string, want ...string) (string, error) {
	st := statusOf(c)
	for _, w := range want {
		if st == w {
			return st, nil
		}
	}
	return st, newError(ErrBusy, fmt.Sprintf("cannot %s %s: it is %s", verb, c.Name(), st), nil)
}

// requireStatusOf is requireStatus for a container by name.
func (m *Manager) requireStatusOf(name, verb string, want ...string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	_, err = m.requireStatus(c, verb, want...)
	return err
}

func (m *Manager) start(oc *opContext, name string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := m.requireStatus(c, "start", "STOPPED"); err != nil {
		return err
	}
	if err := m.cfg.Network.EnsureBridge(); err != nil {
		return newError(ErrFailed, "start "+name, err)
	}
	if m.HasState(name) {
		return m.startFromState(oc, name)
	}
	return m.runHelper(oc, "start", name)
}

func (m *Manager) stop(name string) error { return m.halt(name, true) }

// kill stops a container without a clean shutdown, for when its processes
// and files are about to be replaced anyway (restore of a snapshot).
func (m *Manager) kill(name string) error { return m.halt(name, false) }

func (m *Manager) halt(name string, clean bool) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	st := statusOf(c)
	if st == "STOPPED" {
		return nil
	}
	if st == "FROZEN" {
		// A frozen init cannot take the halt signal.
		if err := c.Unfreeze(); err != nil {
			return newError(ErrFailed, "unfreeze "+name+" before stopping", err)
		}
	}
	if !clean {
		if err := c.Stop(); err != nil {
			return newError(ErrFailed, "stop "+name, err)
		}
	} else if err := c.Shutdown(shutdownTimeout); err != nil && c.Running() {
		if err := c.Stop(); err != nil {
			return newError(ErrFailed, "stop "+name, err)
		}
	}
	if !c.Wait(lxc.STOPPED, shutdownTimeout) {
		return newError(ErrFailed, fmt.Sprintf("stop %s: still %s after %s", name, statusOf(c), shutdownTimeout), nil)
	}
	return nil
}

func (m *Manager) freeze(name string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := m.requireStatus(c, "freeze", "RUNNING"); err != nil {
		return err
	}
	if err := freezeWithin(c, freezeLimit); err != nil {
		return newError(ErrFailed, "freeze "+name, err)
	}
	return nil
}

func (m *Manager) unfreeze(name string) error {
	c, err := m.container(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := m.requireStatus(c, "unfreeze", "FROZEN"); err != nil {
		return err
	}
	if err := c.Unfreeze(); err != nil {
		return newError(ErrFailed, "unfreeze "+name, err)
	}
	return nil
}

// runHelper runs `ctrfs lxc-helper VERB LXCPATH NAME LOGFILE ARGS…` and
// keeps the LXC log it wrote. Its output goes to a file, not a pipe: the
// container's monitor outlives the helper and would hold a pipe open. The
// helper has a lifeline (lifeline.go): it stops with this daemon, and when
// oc.abort is closed.
func (m *Manager) runHelper(oc *opContext, verb, name string, args ...string) error {
	return m.runHelperUntil(oc, nil, verb, name, args...)
}

// runCRIUHelper is runHelper for a verb whose CRIU works over work bytes
// of images: past criuLimit(work) the helper is stopped, and the error is
// an overdueError.
func (m *Manager) runCRIUHelper(oc *opContext, work int64, verb, name string, args ...string) error {
	overdue := &overdueError{verb: verb, name: name, limit: criuLimit(work), work: work}
	return m.runHelperUntil(oc, overdue, verb, name, args...)
}

// runHelperUntil is runHelper stopping the helper at overdue's limit, if
// overdue is not nil.
func (m *Manager) runHelperUntil(oc *opContext, overdue *overdueError, verb, name string, args ...string) error {
	logFile := filepath.Join(m.cfg.StoreDir, "logs", name+"."+verb+".log")
	os.Remove(logFile)
	errFile, err := os.CreateTemp(m.scratchDir(), "helper-*")
	if err != nil {
		return newError(ErrFailed, verb+" "+name, err)
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()

	cmd := exec.Command(m.cfg.HelperPath, append([]string{"lxc-helper", verb, m.cfg.LXCPath, name, logFile}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, errFile, errFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	lifeline, started, runErr := withLifeline(cmd)
	if runErr != nil {
		return newError(ErrFailed, verb+" "+name, runErr)
	}
	defer lifeline.Close()
	var timedOut atomic.Bool
	runErr = cmd.Start()
	started()
	if runErr == nil {
		var limit <-chan time.Time
		if overdue != nil {
			t := time.NewTimer(overdue.limit)
			defer t.Stop()
			limit = t.C
		}
		ended := make(chan struct{})
		go func() {
			select {
			case <-oc.abort:
			case <-limit:
				timedOut.Store(true)
			case <-ended:
				return
			}
			lifeline.Close()
			select {
			case <-ended:
			case <-time.After(helperStopLimit):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		}()
		runErr = cmd.Wait()
		close(ended)
	}

	logData, _ := os.ReadFile(logFile)
	oc.setLog(logData)
	if runErr == nil {
		return nil
	}
	if timedOut.Load() {
		return overdue
	}
	msg, _ := os.ReadFile(errFile.Name())
	reason := strings.TrimSpace(string(msg))
	if e := criulog.LastError(logData); e != "" {
		reason += " (" + e + ")"
	}
	if reason == "" {
		reason = runErr.Error()
	}
	return newError(ErrFailed, fmt.Sprintf("%s %s failed: %s", verb, name, reason), nil)
}
