// Package tree is a client of a ctrfs mount's file tree, the one the
// end-to-end tests (tests/) and the bench (bench/ctrfs-bench) share: it
// writes a command to a `ctl` and, when the write fails, says what `error`
// says; it reads `status` and `info`, waits for a status, and follows
// `events`.
//
// It knows only the files that ctrfs(5) documents, none of ctrfs's code, so
// that what it does an operator's shell could do: a directory here is the
// mount's top or a container's directory (MOUNT/containers/NAME), each with
// its `ctl` and `error`.
package tree

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Ctl writes one command to dir/ctl, as `echo COMMAND > ctl` does. The write
// returns when the command has finished. A failed write's error wraps the
// errno (errors.Is(err, syscall.EBUSY)) and quotes dir/error, which says why;
// a ctl that cannot be opened ran no command, so its error quotes nothing.
func Ctl(dir, command string) error {
	ctl := filepath.Join(dir, "ctl")
	f, err := os.OpenFile(ctl, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("echo %s > %s: %w", command, ctl, err)
	}
	_, err = f.Write([]byte(command + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("echo %s > %s: %w%s", command, ctl, err, ErrorSuffix(dir))
	}
	return nil
}

// LastError is dir/error, trimmed: why the last command there failed, or ""
// when it did not (or the file cannot be read).
func LastError(dir string) string {
	data, _ := os.ReadFile(filepath.Join(dir, "error"))
	return strings.TrimSpace(string(data))
}

// ErrorSuffix is LastError formatted to follow a message, " (error: WHY)",
// or "" when error is empty.
func ErrorSuffix(dir string) string {
	if msg := LastError(dir); msg != "" {
		return " (error: " + msg + ")"
	}
	return ""
}

// Status is dir/status, trimmed: RUNNING, STOPPED or FROZEN for a container.
func Status(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "status"))
	return strings.TrimSpace(string(data)), err
}

// WaitStatus polls dir/status until it reads want, for up to timeout. A
// command's write returns once the command is done, so the first read
// normally answers; the polling is for what changes a container otherwise
// (raw lxc-checkpoint, a peer's move).
func WaitStatus(dir, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := Status(dir)
		if err == nil && st == want {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s: not %s after %s: %w", dir, want, timeout, err)
			}
			return fmt.Errorf("%s is %s, not %s, after %s%s", dir, st, want, timeout, ErrorSuffix(dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Info is dir/info (a container's, a snapshot's, a host's under hosts/)
// as a map; empty when the file cannot be read.
func Info(dir string) map[string]string { return ReadKV(filepath.Join(dir, "info")) }

// ReadKV parses the `key: value` lines of a file; a file that cannot be
// read gives an empty map.
func ReadKV(path string) map[string]string {
	data, _ := os.ReadFile(path)
	return ParseKV(string(data))
}

// ParseKV parses `key: value` lines, as `info` has them: the key up to the
// first colon, the value after it, both trimmed; lines without a colon are
// skipped.
func ParseKV(text string) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return kv
}

// Host is the mount's `host` file: the name this host goes by.
func Host(mount string) (string, error) {
	data, err := os.ReadFile(filepath.Join(mount, "host"))
	return strings.TrimSpace(string(data)), err
}
