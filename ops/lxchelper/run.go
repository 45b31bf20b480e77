package lxchelper

import (
	"context"
	"errors"
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
// when ctx is done.
func (r Runner) Run(ctx context.Context, verb Verb, name string, args ...string) (log []byte, ran bool, err error) {
	return r.run(ctx, verb, name, args...)
}

// RunCRIU is Run for a verb whose CRIU works over work bytes of images:
// past CRIULimit(work) the helper is stopped, and the error is an
// *OverdueError.
func (r Runner) RunCRIU(ctx context.Context, work int64, verb Verb, name string, args ...string) (log []byte, ran bool, err error) {
	overdue := &OverdueError{verb: verb, name: name, limit: CRIULimit(work), work: work}
	ctx, cancel := context.WithTimeoutCause(ctx, overdue.limit, overdue)
	defer cancel()
	return r.run(ctx, verb, name, args...)
}

// run is Run; if ctx's deadline has an *OverdueError for its cause
// (RunCRIU), a helper stopped by it fails with that error.
func (r Runner) run(ctx context.Context, verb Verb, name string, args ...string) ([]byte, bool, error) {
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
	var stopped atomic.Bool // by ctx, not by itself
	runErr = cmd.Start()
	started()
	if runErr == nil {
		ended := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				stopped.Store(true)
			case <-ended:
				return
			}
			stopHelper(lifeline)
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
	var overdue *OverdueError
	if stopped.Load() && errors.As(context.Cause(ctx), &overdue) {
		return logData, true, overdue
	}
	msg, _ := os.ReadFile(errFile.Name())
	reason := strings.TrimSpace(string(msg))
	// A start's cause is LXC's first error; its last is the same
	// "Failed to spawn container" whatever the cause.
	lxcError := criulog.LastError
	if verb == Start {
		lxcError = criulog.FirstError
	}
	if e := lxcError(logData); e != "" {
		reason += " (" + e + ")"
	}
	if reason == "" {
		reason = runErr.Error()
	}
	return logData, true, errkind.New(errkind.ErrFailed, fmt.Sprintf("%s %s failed: %s", verb, name, reason), nil)
}
