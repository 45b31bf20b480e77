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
// says why the whole operation failed.
func LastError(log []byte) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " ERROR "); i >= 0 {
			last = strings.TrimSpace(line[i+len(" ERROR "):])
		}
	}
	return last
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
