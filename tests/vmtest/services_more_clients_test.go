//go:build vmtest

package vmtest

// TestServicesMore's clients on this host, sessions for ackClient: MariaDB
// (its client over one ssh connection into the container, inserting into
// an AUTO_INCREMENT table), the Python service (a POST per request, each
// answering the new count) and a logged-in ssh session whose shell counts
// out loud (each tick is a write the shell acknowledged).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// containerSSH is ssh into the container as root with key, from this
// host over the bed's container segment, with a terminal (a login shell)
// or running remote.
func containerSSH(ip, key string, tty bool, remote ...string) *exec.Cmd {
	args := []string{"-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"}
	if tty {
		args = append(args, "-tt")
	}
	return exec.Command("ssh", append(append(args, "root@"+ip), remote...)...)
}

// dialMariaDB runs MariaDB's client in the container (root's socket
// login: the host has no client of its own) over one ssh connection,
// unbuffered so that each answer comes as its statement ends.
func dialMariaDB(ip, key string) (session, error) {
	return dialLines(containerSSH(ip, key, false, "mariadb", "-N", "-B", "-n"), "SELECT '"+psqlMarker+"';")
}

// mariadbInsert is the MariaDB client's write: its answer is the new id.
const mariadbInsert = "INSERT INTO ctrfs.t () VALUES (); SELECT LAST_INSERT_ID();"

// pySession asks the Python service, a connection per request (it
// speaks HTTP/1.0). A request that fails is tried again until ackTimeout:
// the service is down while frozen, and a request it never answered
// acknowledged nothing.
type pySession struct{ url string }

func dialPy(ip string) (session, error) {
	s := &pySession{url: "http://" + net.JoinHostPort(ip, "8081") + "/"}
	if _, err := s.ask(http.MethodGet); err != nil {
		return nil, err
	}
	return s, nil
}

// query POSTs (one more) or GETs (the count), as cmd says.
func (s *pySession) query(cmd string) (int, error) {
	deadline := time.Now().Add(ackTimeout)
	for {
		n, err := s.ask(cmd)
		if err == nil || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *pySession) ask(method string) (int, error) {
	req, err := http.NewRequest(method, s.url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s %s: %s %q", method, s.url, resp.Status, body)
	}
	return strconv.Atoi(strings.TrimSpace(string(body)))
}

func (s *pySession) close() {}

// shellSession is an ssh login into the container whose shell runs a
// loop typed as a user would, echoing a tick five times a second; query
// waits for the next tick. The session ending is a broken connection.
type shellSession struct {
	cmd   *exec.Cmd
	errs  strings.Builder
	ended chan struct{}
	mu    sync.Mutex
	tick  int // the last tick the shell echoed
	seen  int // the last tick query returned
}

const shellLoop = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done\n"

func dialShell(ip, key string) (session, error) {
	cmd := containerSSH(ip, key, true)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &shellSession{cmd: cmd, ended: make(chan struct{})}
	cmd.Stderr = &s.errs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go s.read(out)
	io.WriteString(in, shellLoop)
	// The login is made once the loop ticks.
	if _, err := s.next(time.Minute); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// read keeps the last tick the session's output shows, until it ends.
func (s *shellSession) read(out io.Reader) {
	defer close(s.ended)
	defer s.cmd.Wait()
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		// The terminal echoes the typed loop too: only the loop's output
		// is a line "tick N".
		rest, ok := strings.CutPrefix(strings.TrimSpace(lines.Text()), "tick ")
		if n, err := strconv.Atoi(rest); ok && err == nil {
			s.mu.Lock()
			s.tick = n
			s.mu.Unlock()
		}
	}
}

func (s *shellSession) query(string) (int, error) { return s.next(ackTimeout) }

// next waits up to timeout for a tick past the last one returned.
func (s *shellSession) next(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		n := s.tick
		s.mu.Unlock()
		if n > s.seen {
			s.seen = n
			return n, nil
		}
		select {
		case <-s.ended:
			return 0, fmt.Errorf("the ssh session ended after tick %d: %s", n, strings.TrimSpace(s.errs.String()))
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the ssh session's shell echoed no tick past %d in %s", n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *shellSession) close() {
	s.cmd.Process.Kill()
	<-s.ended
}
