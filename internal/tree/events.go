package tree

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Events follows a mount's `events` file: every line written from the
// moment FollowEvents returns (ctrfs(5): every open sees the events from
// its open on). A `cat` of the file does the reading: a read of `events`
// waits in the kernel for the next event, and killing that process ends
// such a read where closing a file of this process would wait for it.
type Events struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the cat's output has ended

	mu   sync.Mutex
	text strings.Builder
}

// subscribeTimeout is how long FollowEvents waits for its reader to open
// the file: a loaded machine can take seconds to start a process.
const subscribeTimeout = 10 * time.Second

// FollowEvents starts following MOUNT/events. It returns once the file is
// open, so that events caused after it returns are seen.
func FollowEvents(mount string) (*Events, error) {
	path := filepath.Join(mount, "events")
	cmd := exec.Command("cat", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cat %s: %w", path, err)
	}
	e := &Events{cmd: cmd, done: make(chan struct{})}
	go e.collect(out)
	// The daemon subscribes a reader when it opens `events`: wait for the
	// open, seen as the cat holding the file.
	for deadline := time.Now().Add(subscribeTimeout); !holds(cmd.Process.Pid, path); time.Sleep(20 * time.Millisecond) {
		select {
		case <-e.done:
			cmd.Wait()
			return nil, fmt.Errorf("cat %s ended before following it: %s", path, strings.TrimSpace(stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			e.Close()
			return nil, fmt.Errorf("cat %s: the file not open after %s", path, subscribeTimeout)
		}
	}
	return e, nil
}

// holds says whether process pid has path open.
func holds(pid int, path string) bool {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && link == path {
			return true
		}
	}
	return false
}

func (e *Events) collect(out io.Reader) {
	defer close(e.done)
	buf := make([]byte, 4096)
	for {
		n, err := out.Read(buf)
		e.mu.Lock()
		e.text.Write(buf[:n])
		e.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Text is every line seen so far, as the file gave them.
func (e *Events) Text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.text.String()
}

// ErrNoEvent is wrapped by Wait's error when the event did not come.
var ErrNoEvent = errors.New("no such event")

// Wait waits up to timeout for an event whose line contains substr, such
// as "dakara c1 move ok" (HOST CONTAINER WHAT RESULT).
func (e *Events) Wait(substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(e.Text(), substr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %q not among the events after %s:\n%s", ErrNoEvent, substr, timeout, e.Text())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// Close stops following: it kills the reader (its own process, by pid)
// and waits for it.
func (e *Events) Close() {
	e.cmd.Process.Kill()
	<-e.done
	e.cmd.Wait()
}
