package savedstate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"ctrfs/internal/caps"
	"ctrfs/ops/criulog"
	"ctrfs/ops/errkind"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/opctx"
)

// Check is the `Check` command: would stop-stateful, snapshot --stateful
// and a live move work? It holds the container (hold.go: frozen and off
// the wire, as stop-stateful does), dumps it into a scratch directory and
// rehearses the restore of that dump (lxchelper/rehearse.go), then lets it
// run on; the images are discarded. It reads CRIU's logs for the known
// causes of failure, and looks at the limits of this host that CRIU would
// meet. ErrUnsupported lists every blocker with its fix: a dump's, or a
// restore's with what could get it to restore.
func (k *Keeper) Check(ctx context.Context, oc *opctx.Op, name string) error {
	if err := k.containers.RequireStatus(name, "check", "RUNNING"); err != nil {
		return err
	}
	var found []string
	hint := k.containers.ImagesSizeHint(name)
	dir, err := k.staging.Dir(name, "check", hint)
	if err != nil {
		return errkind.New(errkind.ErrFailed, "prepare check of "+name, err)
	}
	defer os.RemoveAll(dir)
	dumpErr, err := k.dumpUnderHold(ctx, oc, name, "check", dir, func() error {
		err := k.containers.RunCRIUHelper(ctx, oc, hint, lxchelper.CheckpointHeld, name, dir)
		oc.SetLog(criulog.Combined(filepath.Join(dir, "dump.log"), oc.Log))
		return err
	})
	if err != nil {
		return err
	}
	var restoreErr error
	if dumpErr == nil {
		roc := &opctx.Op{}
		_, _, restoreErr = k.CriuRestore(ctx, roc, lxchelper.RestoreRehearsal, name, dir, RestoreFrom{})
		oc.SetLog(append(append(oc.Log, "=== restore rehearsal ===\n"...), roc.Log...))
		if restoreErr != nil {
			found = append(found, restoreBlocker(restoreErr, roc.Log))
		}
	}
	if err := k.Release(name); err != nil {
		return err
	}
	if dumpErr != nil {
		causes := criulog.Blockers(oc.Log)
		if len(causes) == 0 {
			causes = []string{"CRIU failed: " + criulog.Explain(oc.Log)}
		}
		for _, c := range causes {
			if c == criulog.RlimitCause {
				// This host's limit: name the tasks that meet it.
				if host := k.hostBlockers(name); len(host) > 0 {
					found = append(found, host...)
					continue
				}
			}
			if !slices.Contains(found, c) {
				found = append(found, c)
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	return errkind.New(errkind.ErrUnsupported, cannotCheckpoint(name, found), nil)
}

// restoreBlocker words a check whose restore rehearsal failed: CRIU's
// causes, and what could get such a checkpoint to restore.
func restoreBlocker(err error, log []byte) string {
	msg := fmt.Sprintf("its checkpoint does not restore on this host (%v)", err)
	if fixes := criulog.RestoreFixes(log); len(fixes) > 0 {
		msg += "; to try: " + strings.Join(fixes, "; ")
	}
	return msg
}

// hostBlockers are this host's limits that the container meets: without
// CAP_SYS_RESOURCE, CRIU (run as root) may not read the limits of a task
// of another user, and the dump fails on the first such task.
func (k *Keeper) hostBlockers(name string) []string {
	if caps.CheckpointOtherUsers() {
		return nil
	}
	c, err := k.containers.Open(name)
	if err != nil {
		return nil
	}
	pid := c.InitPid()
	c.Release()
	if inUserNamespace(pid) {
		return nil
	}
	others := tasksNotRoot(pid)
	if len(others) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("tasks of users other than root (%s) and this host's root lacks CAP_SYS_RESOURCE, so CRIU may not read their limits: run every long-running task as uid 0, or run ctrfs with CAP_SYS_RESOURCE",
		strings.Join(others, ", "))}
}

// tasksNotRoot lists the tasks of the container whose init is pid (those in
// its PID namespace) that have a uid or gid other than 0, as "PID (COMM,
// uid N, of UNIT)" with the PID as the container sees it, at most a few.
func tasksNotRoot(pid int) []string {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err != nil || other != ns {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		fields := statusFields(string(status))
		if allZero(fields["Uid"]) && allZero(fields["Gid"]) {
			continue
		}
		nspid := fields["NSpid"]
		if f := strings.Fields(nspid); len(f) > 0 {
			nspid = f[len(f)-1]
		}
		uid := strings.Fields(fields["Uid"] + " ?")[0]
		// The unit is what an operator changes (User=, or stops it).
		of := ""
		if unit := criulog.TaskUnit(e.Name()); unit != "" {
			of = ", of " + unit
		}
		out = append(out, fmt.Sprintf("%s (%s, uid %s%s)", nspid, fields["Name"], uid, of))
		if len(out) == 5 {
			out = append(out, "…")
			break
		}
	}
	return out
}

func statusFields(status string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func allZero(ids string) bool {
	for _, f := range strings.Fields(ids) {
		if f != "0" {
			return false
		}
	}
	return true
}
