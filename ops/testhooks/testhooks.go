// Package testhooks holds the points at which tests may stop or hold the
// daemon: CTRFS_CRASH_AT kills it at a step of an operation, CTRFS_PAUSE_AT
// holds it there while a file exists, so that tests of recovery and of
// races act at a known step instead of after a guessed delay. Unset (on
// every host in use), both do nothing. It knows nothing of the operations
// whose steps it is given.
package testhooks

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// crashAt is CTRFS_CRASH_AT, a test hook: the name of a step (such as
// "rename-moved") at which the daemon kills itself with SIGKILL, so that
// tests of recovery can stop it at each step of an operation rather than
// after guessed delays. Unset, it does nothing.
var crashAt = os.Getenv("CTRFS_CRASH_AT")

// CrashPoint marks a step that a crash may follow.
func CrashPoint(step string) {
	if crashAt == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not handled: this goroutine goes with the process
	}
}

// pauseAt is CTRFS_PAUSE_AT=STEP:FILE, a test hook: at the step (such as
// "snapshot-freeze") the daemon creates FILE and waits while it exists, at
// most pauseLimit, so that a test can change what the operation works on
// at a known point of it rather than race it. Unset, it does nothing.
var pauseAt = os.Getenv("CTRFS_PAUSE_AT")

const pauseLimit = 2 * time.Minute

// PausePoint marks a step that a test may pause at; the file holds the
// step, then the details given, a line each (a pid the test acts on).
func PausePoint(step string, details ...string) {
	at, file, ok := strings.Cut(pauseAt, ":")
	if !ok || at != step {
		return
	}
	content := strings.Join(append([]string{step}, details...), "\n") + "\n"
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		return
	}
	for deadline := time.Now().Add(pauseLimit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(file); err != nil {
			return
		}
	}
}

// kernelAs is CTRFS_TEST_KERNEL=RELEASE[:FEATURE,...], a test hook: the
// kernel release this host reports to its peers, and with a colon the
// kernel features it reports having (none if empty), so that tests on one
// machine can play a host with an older kernel. Unset, it does nothing.
var kernelAs = os.Getenv("CTRFS_TEST_KERNEL")

// Kernel returns the release and features a host reports: its own, or
// those CTRFS_TEST_KERNEL gives.
func Kernel(release string, features []string) (string, []string) {
	if kernelAs == "" {
		return release, features
	}
	release, list, ok := strings.Cut(kernelAs, ":")
	if ok {
		features = nil
		if list != "" {
			features = strings.Split(list, ",")
		}
	}
	return release, features
}

// Duration is the duration in the environment variable name, a test hook
// such as CTRFS_TEST_SESSION_IDLE, or def when it is unset or not a
// positive duration.
func Duration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// Int is the integer in the environment variable name, a test hook such
// as CTRFS_TEST_SEND_RATE, or def when it is unset or not a positive
// integer.
func Int(name string, def int64) int64 {
	if n, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && n > 0 {
		return n
	}
	return def
}

// subIDFiles is CTRFS_TEST_SUBID=SUBUID:SUBGID, a test hook: the files
// the daemon takes root's id range for unprivileged containers from,
// instead of /etc/subuid and /etc/subgid, so that a test can give it a
// range that is missing or too small without touching the host's. Unset,
// it does nothing.
var subIDFiles = os.Getenv("CTRFS_TEST_SUBID")

// SubIDFiles returns the subordinate id files to read: uid and gid as
// given, or those CTRFS_TEST_SUBID gives.
func SubIDFiles(uid, gid string) (string, string) {
	if u, g, ok := strings.Cut(subIDFiles, ":"); ok {
		return u, g
	}
	return uid, gid
}

// failRestoreEngine is CTRFS_TEST_FAIL_RESTORE=ENGINE, a test hook: a
// CRIU restore with that mount engine ("mount-v2" or "mntns-compat")
// fails at its first action script, before any task exists, as a restore
// CRIU cannot do with that engine fails, so that tests of the fallback to
// the other engine need no container that one engine cannot restore (CRIU
// patch 0011 fixed the last one known). Unset, it does nothing.
var failRestoreEngine = os.Getenv("CTRFS_TEST_FAIL_RESTORE")

// FailRestore tells whether a restore with the mount engine is to fail.
func FailRestore(engine string) bool { return failRestoreEngine == engine }
