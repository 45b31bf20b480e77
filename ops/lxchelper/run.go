package lxchelper

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"ctrfs/ops/criulog"
	"ctrfs/ops/errkind"
)

// Runner is the daemon's end: it starts helpers and waits for them.
type Runner struct {
	Path    string // the ctrfs binary, run as `Path lxc-helper …`
	LXCPath string // the LXC path of the containers
	LogDir  string // where each verb's LXC log goes, as NAME.VERB.log
	TempDir string // the daemon's scratch directory: the helper's output
}

// Run runs `ctrfs lxc-helper VERB LXCPATH NAME LOGFILE ARGS…` and returns
// the LXC log it wrote; ran is false if the helper could not be tried
// (then there is no log). Its output goes to a file, not a pipe: the
// container's monitor outlives the helper and would hold a pipe open. The
// helper has a lifeline (lifeline.go): it stops with this daemon, and
// when abort is closed.
func (r Runner) Run(abort <-chan struct{}, verb Verb, name string, args ...string) (log []byte, ran bool, err error) {
	return r.run(abort, nil, verb, name, args...)
}

// RunCRIU is Run for a verb whose CRIU works over work bytes of images:
// past CRIULimit(work) the helper is stopped, and the error is an
// *OverdueError.
func (r Runner) RunCRIU(abort <-chan struct{}, work int64, verb Verb, name string, args ...string) (log []byte, ran bool, err error) {
	overdue := &OverdueError{verb: verb, name: name, limit: CRIULimit(work), work: work}
	return r.run(abort, overdue, verb, name, args...)
}

// run is Run stopping the helper at overdue's limit, if overdue is not
// nil.
func (r Runner) run(abort <-chan struct{}, overdue *OverdueError, verb Verb, name string, args ...string) ([]byte, bool, error) {
	logFile := filepath.Join(r.LogDir, name+"."+string(verb)+".log")
	os.Remove(logFile)
	errFile, err := os.CreateTemp(r.TempDir, "helper-*")
	if err != nil {
		return nil, false, errkind.New(errkind.ErrFailed, string(verb)+" "+name, err)
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()

	cmd := exec.Command(r.Path, append([]string{"lxc-helper", string(verb), r.LXCPath, name, logFile}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, errFile, errFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	lifeline, started, runErr := withLifeline(cmd)
	if runErr != nil {
		return nil, false, errkind.New(errkind.ErrFailed, string(verb)+" "+name, runErr)
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
			case <-abort:
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
	if runErr == nil {
		return logData, true, nil
	}
	if timedOut.Load() {
		return logData, true, overdue
	}
	msg, _ := os.ReadFile(errFile.Name())
	reason := strings.TrimSpace(string(msg))
	if e := criulog.LastError(logData); e != "" {
		reason += " (" + e + ")"
	}
	if reason == "" {
		reason = runErr.Error()
	}
	return logData, true, errkind.New(errkind.ErrFailed, fmt.Sprintf("%s %s failed: %s", verb, name, reason), nil)
}
