package savedstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"ctrfs/ops/configfile"
	"ctrfs/ops/criulog"
	"ctrfs/ops/errkind"
	"ctrfs/ops/lazypages"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/opctx"
	"ctrfs/ops/testhooks"
)

// CRIU restores mounts with one of two engines, and which one a container
// needs depends on its mounts: the default, mount-v2, failed on bind
// mounts of a symlink such as /lib before ctrfs's CRIU patch 0011
// (`move_mount … Invalid argument`), and mntns-compat-mode fails on a systemd service's private mount namespace
// (`Can't bind-mount at …/dev/ptmx`). So a restore tries the mode that
// last worked for the container (mount-v2 if none did yet) and then the
// other, and the config remembers the one that worked, so that it travels
// with the container (moves, snapshots) and the next restore needs one try.
const (
	ModeV2     = lxchelper.EngineMountV2
	ModeCompat = lxchelper.ArgMntnsCompat // as the restore verbs' argument names it
)

// restoreModeKey is the config line that remembers the mode: a comment,
// `# ctrfs.restore-mode = mount-v2`, that LXC ignores.
const restoreModeKey = "# ctrfs.restore-mode"

// RestoreMode is the remembered mode, or "".
func (k *Keeper) RestoreMode(name string) string {
	data, err := os.ReadFile(k.containers.ConfigPath(name))
	if err != nil {
		return ""
	}
	line, _ := configfile.Line(data, restoreModeKey)
	_, v, _ := strings.Cut(line, "=")
	if v = strings.TrimSpace(v); v == ModeV2 || v == ModeCompat {
		return v
	}
	return ""
}

// RememberRestoreMode writes the mode into the config (a running
// container's config is read only at its start).
func (k *Keeper) RememberRestoreMode(name, mode string) error {
	path := k.containers.ConfigPath(name)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return configfile.WriteAtomic(path, configfile.SetLine(data, restoreModeKey, mode))
}

// RestoreAttempts is the order in which to try the modes.
func (k *Keeper) RestoreAttempts(name string) []string {
	if k.RestoreMode(name) == ModeCompat {
		return []string{ModeCompat, ModeV2}
	}
	return []string{ModeV2, ModeCompat}
}

// imageServing starts serving the images for one restore attempt in dir
// and returns the function that stops it and reports a damaged image.
type imageServing func(dir string) (stop func() error, err error)

// RestoreFrom says where a restore's images come from: files in dir (the
// zero value), served there (serve, size bytes of them), or files whose
// memory CRIU's lazy-pages daemon copies in (lazy starts the daemon of
// each attempt).
type RestoreFrom struct {
	serve imageServing
	size  int64
	Lazy  startLazyPages
}

// CriuRestore restores the container with the helper verb from the images
// in dir as from says, trying each mode of restoreAttempts while CRIU
// fails and the container is left STOPPED. A damaged image ends it at
// once. The `log` holds every attempt's logs, and `info` which modes were
// tried. A lazy restore returns its daemon, still copying the memory in:
// the caller waits for it (awaitLazyPages) before the container runs.
func (k *Keeper) CriuRestore(ctx context.Context, oc *opctx.Op, verb lxchelper.Verb, name, dir string, from RestoreFrom) (lazy *lazypages.Daemon, damaged, err error) {
	var logs bytes.Buffer
	var tried []string
	var failures []string
	defer func() {
		oc.SetLog(logs.Bytes())
		oc.Extra = append(oc.Extra, opctx.KeyValue{Key: "restore-attempts", Value: strings.Join(tried, ", ")})
	}()
	if from.serve == nil {
		// See mappedroot.go.
		if err := k.letRootRead(name, dir); err != nil {
			return nil, nil, errkind.New(errkind.ErrFailed, "let the root of "+name+" read its images", err)
		}
	}
	for i, mode := range k.RestoreAttempts(name) {
		args := []string{dir}
		var stop func() error
		if from.serve != nil {
			if stop, err = from.serve(dir); err != nil {
				return nil, nil, errkind.New(errkind.ErrFailed, "serve saved state of "+name, err)
			}
			args = append(args, lxchelper.ArgStream)
		}
		if from.Lazy != nil {
			if lazy, err = from.Lazy(dir); err != nil {
				return nil, nil, errkind.New(errkind.ErrFailed, "start CRIU's lazy-pages daemon for "+name, err)
			}
			testhooks.PausePoint("lazy-restore", strconv.Itoa(lazy.Pid()))
			args = append(args, lxchelper.ArgLazyPages)
		}
		if mode == ModeCompat {
			args = append(args, ModeCompat)
		}
		aoc := &opctx.Op{}
		actx, abort := context.WithCancel(ctx)
		if lazy != nil {
			// A restore whose lazy-pages daemon died waits for it for good.
			go func(failed <-chan struct{}) {
				select {
				case <-failed:
					abort()
				case <-actx.Done():
				}
			}(lazy.Failed())
		}
		os.Remove(filepath.Join(dir, "restore.log"))
		work := from.size
		if from.serve == nil {
			work = opctx.DirSize(dir)
		}
		err = k.containers.RunCRIUHelper(actx, aoc, work, verb, name, args...)
		abort()
		if stop != nil {
			damaged = stop()
		}
		log := criulog.Combined(filepath.Join(dir, "restore.log"), aoc.Log)
		var lazyFailed error // the lazy-pages daemon died under the restore
		if lazy != nil && err != nil {
			select {
			case <-lazy.Failed():
				lazyFailed = lazy.Wait()
			default:
			}
			lazy.Kill() // it would wait for the restore for good
			lazy.Wait()
			log = append(log, lazy.Log()...)
			lazy = nil
		}
		result := "ok"
		if err != nil {
			result = "failed"
		}
		fmt.Fprintf(&logs, "=== restore with %s: %s ===\n", mode, result)
		logs.Write(log)
		tried = append(tried, mode+" "+result)
		if err == nil {
			if mode != k.RestoreMode(name) {
				if werr := k.RememberRestoreMode(name, mode); werr != nil {
					k.log.Warn("cannot remember the restore mode", "container", name, "err", werr)
				}
			}
			return lazy, nil, nil
		}
		why := criulog.Explain(log)
		var overdue *lxchelper.OverdueError
		overdued := errors.As(err, &overdue)
		if overdued {
			why = overdue.Error()
		}
		if lazyFailed != nil {
			why = lazyFailed.Error() + ", which the restore waited for"
			// A restore that failed by itself ends its lazy-pages daemon
			// too ("uffd: PID recv: short read"): the restore's own error,
			// in CRIU's log, is then the cause.
			if own := restoreError(dir); own != "" {
				why = own + " (and CRIU's lazy-pages daemon: " + lazyFailed.Error() + ")"
			}
		}
		if i > 0 && strings.HasSuffix(failures[0], ": "+why) {
			// The other engine met the same cause: said once.
			failures[0] = strings.Replace(failures[0], ":", " and "+mode+":", 1)
		} else {
			failures = append(failures, fmt.Sprintf("with %s: %s", mode, why))
		}
		if damaged != nil || lazyFailed != nil || overdued || i == 1 {
			break // the other mount engine would not mend it
		}
		// A rehearsal's copy is its own container, gone after a failure;
		// the held container it was taken from is FROZEN.
		if st, serr := k.containers.Status(name); verb != lxchelper.RestoreRehearsal && (serr != nil || st != "STOPPED") {
			break // not a clean failure: no second restore over it
		}
		k.log.Info("restore failed; trying CRIU's other mount engine", "container", name, "mode", mode)
	}
	return nil, damaged, errkind.New(errkind.ErrFailed, strings.Join(failures, "; "), nil)
}

// restoreError is the cause of the error in CRIU's restore log in dir,
// or "" if CRIU logged none (it was killed, say).
func restoreError(dir string) string {
	log, err := os.ReadFile(filepath.Join(dir, "restore.log"))
	if err != nil || !bytes.Contains(log, []byte("Error (")) {
		return ""
	}
	return criulog.Explain(log)
}
