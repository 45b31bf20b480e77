package criulog

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LastError picks the last ERROR message of an LXC log, which usually
// says why the whole operation failed, of those that say anything.
func LastError(log []byte) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " ERROR "); i >= 0 && !saysNothing(line[i+len(" ERROR "):]) {
			last = strings.TrimSpace(line[i+len(" ERROR "):])
		}
	}
	return last
}

// withoutLocation is an LXC log message without LXC's source location:
// "criu - ../src/lxc/criu.c:do_dump:1311 - criu output: …" is
// "criu output: …".
func withoutLocation(msg string) string {
	if f := strings.SplitN(msg, " - ", 3); len(f) == 3 && strings.Contains(f[1], ".c:") {
		msg = f[2]
	}
	return strings.TrimSpace(msg)
}

// saysNothing says whether an LXC error message is a heading with nothing
// after it: LXC's "criu output: %s" when CRIU, which logs to its own file,
// printed nothing. Picked as the cause, it named none.
func saysNothing(msg string) bool {
	msg = withoutLocation(msg)
	return msg == "" || strings.HasSuffix(msg, ":")
}

// FirstError is the first ERROR message of an LXC log, without LXC's
// source location: when a container fails to start, the cause (a binary
// missing from the rootfs, an AppArmor profile that cannot be loaded, a
// mount that fails), where the last is what every cause ends with
// ("Failed to spawn container").
func FirstError(log []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " ERROR "); i >= 0 && !saysNothing(line[i+len(" ERROR "):]) {
			// "start - ../src/lxc/start.c:start:2197 - No such file …"
			return withoutLocation(line[i+len(" ERROR "):])
		}
	}
	return ""
}

// Combined is the `log` of a checkpoint or restore: CRIU's log, then LXC's.
func Combined(criuLogPath string, lxcLog []byte) []byte {
	var b bytes.Buffer
	if data, err := os.ReadFile(criuLogPath); err == nil {
		fmt.Fprintf(&b, "=== CRIU %s ===\n", filepath.Base(criuLogPath))
		b.Write(data)
	}
	if len(lxcLog) > 0 {
		b.WriteString("=== LXC ===\n")
		b.Write(lxcLog)
	}
	return b.Bytes()
}

// Has says whether the log at path holds s (what CRIU logs at a known step
// of its work, say).
func Has(path, s string) bool {
	b, _ := os.ReadFile(path)
	return bytes.Contains(b, []byte(s))
}
