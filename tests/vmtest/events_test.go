//go:build vmtest

package vmtest

// A VM's events file followed from this host: a `cat` of it in the VM,
// over ssh, started so that it reports (on stderr) once it holds the file
// open, since only events after the open are seen.

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

type Events struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	text strings.Builder
}

const followScript = `cat /mnt/ctrfs/events & pid=$!
i=0; until ls -l /proc/$pid/fd 2>/dev/null | grep -q /mnt/ctrfs/events; do
  i=$((i+1)); [ $i -lt 600 ] || { echo never-subscribed >&2; kill $pid; exit 1; }; sleep 0.1; done
echo subscribed >&2; wait $pid`

// Follow starts following v's events; it returns once the reader is
// subscribed. The reader is killed when the test ends.
func (v *VM) Follow(t *testing.T) *Events {
	t.Helper()
	e := &Events{cmd: exec.Command("ssh", v.sshArgs(followScript)...)}
	out, _ := e.cmd.StdoutPipe()
	errPipe, _ := e.cmd.StderrPipe()
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cmd.Process.Kill(); e.cmd.Wait() })
	go func() {
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			e.mu.Lock()
			e.text.WriteString(line)
			e.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(errPipe).ReadString('\n')
		if strings.TrimSpace(line) != "subscribed" {
			ready <- fmt.Errorf("following %s's events: %q %v", v.Name, line, err)
		} else {
			ready <- nil
		}
		io.Copy(io.Discard, errPipe)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("following %s's events: not subscribed after 2 minutes", v.Name)
	}
	return e
}

func (e *Events) Text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.text.String()
}

// Has says whether an event line contains substr.
func (e *Events) Has(substr string) bool { return strings.Contains(e.Text(), substr) }
