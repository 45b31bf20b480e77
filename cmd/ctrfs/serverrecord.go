package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A serving daemon records, per FUSE connection, that it serves it: the
// next daemon on the mount point can then tell a dead daemon's mount,
// which it takes over, from a live one that is slow to answer, which it
// must leave alone (deadmount.go). /run is emptied at boot, as the mounts
// are.
const serverRecordDir = "/run/ctrfs"

// serverRecord is the file serverRecordDir/fuse-N of FUSE connection N:
// the daemon's pid, its start time (so that a reused pid is not taken
// for it) and the mount point, a line each.
type serverRecord struct {
	pid   int
	start string // field 22 of /proc/PID/stat, in clock ticks since boot
	mount string
}

func serverRecordPath(conn int) string {
	return filepath.Join(serverRecordDir, "fuse-"+strconv.Itoa(conn))
}

// recordServer writes this daemon's record for the mount on dir. It
// returns the function that removes it; a daemon that cannot write it
// still serves, logging why.
func recordServer(dir string, log *slog.Logger) (remove func()) {
	m, err := mountAt(dir)
	if err == nil && m == nil {
		err = fmt.Errorf("%s is not mounted", dir)
	}
	var start string
	if err == nil {
		start, _, err = procStart(os.Getpid())
	}
	if err == nil {
		err = os.MkdirAll(serverRecordDir, 0o755)
	}
	if err == nil {
		text := fmt.Sprintf("%d\n%s\n%s\n", os.Getpid(), start, dir)
		tmp := serverRecordPath(m.minor) + ".tmp"
		if err = os.WriteFile(tmp, []byte(text), 0o644); err == nil {
			err = os.Rename(tmp, serverRecordPath(m.minor))
		}
	}
	if err != nil {
		log.Warn("cannot record that this daemon serves its mount; should it die, the next daemon takes the mount over only if the kernel fails it", "err", err)
		return func() {}
	}
	return func() { removeServerRecord(m.minor) }
}

func removeServerRecord(conn int) { os.Remove(serverRecordPath(conn)) }

func readServerRecord(conn int) (serverRecord, error) {
	b, err := os.ReadFile(serverRecordPath(conn))
	if err != nil {
		return serverRecord{}, err
	}
	lines := strings.SplitN(strings.TrimSuffix(string(b), "\n"), "\n", 3)
	if len(lines) != 3 {
		return serverRecord{}, fmt.Errorf("%s: %d lines, want 3", serverRecordPath(conn), len(lines))
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil {
		return serverRecord{}, fmt.Errorf("%s: pid: %w", serverRecordPath(conn), err)
	}
	return serverRecord{pid: pid, start: lines[1], mount: lines[2]}, nil
}

// alive says whether the recorded daemon still runs. One that is exiting
// is not: a killed daemon can be stuck in its exit for good (see
// deadmount.go), its main thread gone (state Z) or SIGKILL pending.
func (r serverRecord) alive() bool {
	start, state, err := procStart(r.pid)
	if err != nil || start != r.start || state == "Z" || state == "X" {
		return false
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, value, _ := strings.Cut(line, ":")
		if key != "ShdPnd" {
			continue
		}
		pending, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		return err == nil && pending&(1<<(9-1)) == 0 // SIGKILL is 9
	}
	return true
}

// procStart reads the start time and the state of process pid.
func procStart(pid int) (start, state string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", err
	}
	// PID (COMM) STATE PPID …: COMM may hold spaces and parentheses.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 20 {
		return "", "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	return fields[19], fields[0], nil
}
