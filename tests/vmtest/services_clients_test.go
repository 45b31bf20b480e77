//go:build vmtest

package vmtest

// The services' clients on this host, over the bed's container segment:
// each holds one connection to its service and writes in a loop, keeping
// what the service acknowledged last (Redis: INCR's new value; PostgreSQL:
// the id an INSERT returned, from a serial). An acknowledged value never
// goes back unless acknowledged writes were lost. The longest gap between
// two acknowledgements during an operation is the downtime the client saw.
// A broken connection is recorded and dialled again, so that one broken
// connection does not hide what the later operations do.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ctrfs/internal/redisint"
)

// ackTimeout is how long one write may wait for its answer: a checkpoint
// or a move holds it back (stop-stateful, its restore rehearsal and the
// start take minutes under emulation), and TCP's retransmissions back off
// meanwhile. Past it the connection counts as broken.
const ackTimeout = 10 * time.Minute

// session is one connection to a service: query sends one command and
// returns the integer it answers.
type session interface {
	query(cmd string) (int, error)
	close()
}

type ackClient struct {
	name   string
	dial   func() (session, error)
	write  string // the command of each write
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	s      session
	acked  int       // the last value acknowledged
	writes int       // acknowledged writes
	last   time.Time // when acked was
	maxGap time.Duration
	lost   []string // a value that went back
	breaks []string // connections that broke, and why
}

// startClient dials its service (retrying for a few minutes: the service
// may be starting) and writes until the test ends.
func startClient(t *testing.T, name string, dial func() (session, error), write string) *ackClient {
	t.Helper()
	c := &ackClient{name: name, dial: dial, write: write, stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	waitFor(t, name+" to take a connection", 3*time.Minute, func() bool {
		c.s, err = dial()
		return err == nil
	})
	c.last = time.Now()
	go c.run()
	t.Cleanup(c.close)
	return c
}

func (c *ackClient) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		c.mu.Lock()
		s := c.s
		c.mu.Unlock()
		if s == nil {
			if s2, err := c.dial(); err == nil {
				c.mu.Lock()
				c.s = s2
				c.mu.Unlock()
			} else {
				time.Sleep(500 * time.Millisecond)
			}
			continue
		}
		n, err := s.query(c.write)
		now := time.Now()
		c.mu.Lock()
		if err != nil {
			c.breaks = append(c.breaks, fmt.Sprintf("%s: %v (last acknowledged %d)", now.Format("15:04:05"), err, c.acked))
			s.close()
			c.s = nil
		} else {
			if n <= c.acked {
				c.lost = append(c.lost, fmt.Sprintf("%s: acknowledged %d after %d", now.Format("15:04:05"), n, c.acked))
			}
			if gap := now.Sub(c.last); gap > c.maxGap {
				c.maxGap = gap
			}
			c.acked, c.last = n, now
			c.writes++
		}
		c.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

// mark starts an operation's window: the longest gap is counted afresh.
func (c *ackClient) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxGap = 0
	return c.acked
}

// goesOn waits until the client has written past before, then fails the
// test if a connection broke or a value went back since the last call;
// it returns the longest gap since mark.
func (c *ackClient) goesOn(t *testing.T, before int, when string) time.Duration {
	t.Helper()
	waitFor(t, c.name+"'s client to write "+when, 5*time.Minute, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.acked > before
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lost) > 0 {
		t.Errorf("%s %s: acknowledged writes lost: %s", c.name, when, strings.Join(c.lost, "; "))
	}
	if len(c.breaks) > 0 {
		t.Errorf("%s %s: the client's connection broke (dialled again): %s", c.name, when, strings.Join(c.breaks, "; "))
	}
	c.lost, c.breaks = nil, nil
	return c.maxGap
}

// holds stops the client and checks, on a connection of its own, that the
// service holds every acknowledged write: query answers how many it
// holds (count) or the last value (at least acked).
func (c *ackClient) holds(t *testing.T, query string, count bool) {
	t.Helper()
	c.close()
	s, err := c.dial()
	if err != nil {
		t.Fatalf("%s: dial for the final check: %v", c.name, err)
	}
	defer s.close()
	n, err := s.query(query)
	if err != nil {
		t.Fatalf("%s: %s: %v", c.name, query, err)
	}
	want := c.acked
	if count {
		want = c.writes
	}
	if n < want {
		t.Errorf("%s holds %d (%s) after %d acknowledged writes up to %d: acknowledged writes lost", c.name, n, query, c.writes, c.acked)
	}
	t.Logf("%s: %d writes acknowledged (last %d), the service holds %d", c.name, c.writes, c.acked, n)
}

func (c *ackClient) close() {
	select {
	case <-c.stop:
		return
	default:
		close(c.stop)
	}
	<-c.done
	if c.s != nil {
		c.s.close()
		c.s = nil
	}
}

// redisSession speaks Redis's inline commands over one connection.
type redisSession struct {
	conn *redisint.Conn
}

func dialRedis(ip string) (session, error) {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "6379"), 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &redisSession{conn: redisint.New(conn)}, nil
}

// query sends one inline command (a word and its key) and reads its
// integer answer (a key not set reads as 0).
func (s *redisSession) query(cmd string) (int, error) {
	return s.conn.Do(ackTimeout, strings.Fields(cmd)...)
}

func (s *redisSession) close() { s.conn.Close() }

// psqlSession is this host's psql on one connection, fed a statement at
// a time. Each is followed by \echo, after which psql flushes its output,
// so the statement's one value arrives before the marker line. Any tool
// that reads statements on stdin and answers each in order (MariaDB's
// client over ssh) is driven the same way, with its own end.
type psqlSession struct {
	end   string // the statement after which the tool prints psqlMarker
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *os.File
	r     *bufio.Reader
	errs  strings.Builder
	ended chan struct{}
}

const psqlMarker = "ctrfs-vmtest-end"

func dialPsql(ip string) (session, error) {
	cmd := exec.Command("psql", "-h", ip, "-U", "postgres", "-d", "postgres", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
	return dialLines(cmd, "\\echo "+psqlMarker)
}

// dialLines starts cmd as a psqlSession whose statements are followed by
// end, and proves the connection with a query.
func dialLines(cmd *exec.Cmd, end string) (session, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// A pipe of os.Pipe, so that reads can have a deadline.
	out, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s := &psqlSession{end: end, cmd: cmd, in: in, out: out, ended: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w, &s.errs
	if err := cmd.Start(); err != nil {
		out.Close()
		w.Close()
		return nil, err
	}
	w.Close()
	go func() { cmd.Wait(); close(s.ended) }()
	s.r = bufio.NewReader(out)
	// The connection is made when psql starts: a query proves it.
	if _, err := s.query("SELECT 1;"); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *psqlSession) query(sql string) (int, error) {
	if _, err := io.WriteString(s.in, sql+"\n"+s.end+"\n"); err != nil {
		return 0, s.failed(err)
	}
	s.out.SetReadDeadline(time.Now().Add(ackTimeout))
	var value string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return 0, s.failed(err)
		}
		line = strings.TrimSpace(line)
		if line == psqlMarker {
			break
		}
		value = line
	}
	return strconv.Atoi(value)
}

// failed is err with what psql said, once it has ended (a lost
// connection ends it: it reads a script).
func (s *psqlSession) failed(err error) error {
	select {
	case <-s.ended:
		return fmt.Errorf("%v: psql: %s", err, strings.TrimSpace(s.errs.String()))
	case <-time.After(5 * time.Second):
		return err
	}
}

func (s *psqlSession) close() {
	s.cmd.Process.Kill()
	<-s.ended
	s.out.Close()
}
