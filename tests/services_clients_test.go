package tests

// The clients of TestDebianServices: each writes and keeps the last write
// its service acknowledged, so that after an operation the service must
// hold at least that much. Two run on the host and hold one TCP
// connection each (Redis's protocol, an ssh session with a shell), for
// CRIU's TCP repair; the rest run in the container as transient systemd
// services (a Redis and a MariaDB loop writing their last acknowledged
// value to a file), started by its systemd, not by lxc-attach, so that
// they hold nothing of the host's.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ctrfs/internal/redisint"
)

// redisClient INCRs one key over one connection, for as long as it runs.
type redisClient struct {
	conn  *redisint.Conn
	key   string
	mu    sync.Mutex
	acked int
	err   error
	stop  chan struct{}
	done  chan struct{}
}

// dialRedis opens a connection to Redis on ip; start makes it a client.
func dialRedis(t *testing.T, ip string) *redisClient {
	t.Helper()
	var conn net.Conn
	waitLong(t, "redis on "+ip+" to take a connection", time.Minute, func() bool {
		var err error
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(ip, "6379"), time.Second)
		return err == nil
	})
	c := &redisClient{conn: redisint.New(conn), stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(c.close)
	return c
}

// redisClientOn INCRs key on one connection of its own until closed.
func redisClientOn(t *testing.T, ip, key string) *redisClient {
	t.Helper()
	c := dialRedis(t, ip)
	c.key = key
	go c.run()
	return c
}

// command sends one command and reads its integer (or bulk) answer. The
// deadline is long: a checkpoint or a move holds the answer back.
func (c *redisClient) command(args ...string) (int, error) {
	return c.conn.Do(2*time.Minute, args...)
}

func (c *redisClient) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, err := c.command("INCR", c.key)
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.mu.Unlock()
			return
		}
		c.acked = n
		c.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

// last is the last acknowledged count and the error that ended the
// client, if any.
func (c *redisClient) last() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked, c.err
}

// close stops the client (if it runs) and closes its connection.
func (c *redisClient) close() {
	select {
	case <-c.stop:
		return
	default:
		close(c.stop)
	}
	c.conn.Close()
	if c.key != "" {
		<-c.done
	}
}

// goesOn fails the test unless the client still writes on its own
// connection, past what it had acknowledged before.
func (c *redisClient) goesOn(t *testing.T, before int, when string) int {
	t.Helper()
	var n int
	var err error
	waitLong(t, "the host's redis client to write on "+when, time.Minute, func() bool {
		n, err = c.last()
		return err != nil || n > before
	})
	if err != nil {
		t.Fatalf("the host's redis connection broke %s (last acknowledged %d): %v", when, n, err)
	}
	return n
}

// sshShell is a logged-in ssh session from the host whose shell counts
// out loud.
type sshShell struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	tick int
	done chan struct{}
}

func startSSHShell(t *testing.T, ip, key string) *sshShell {
	t.Helper()
	cmd := exec.Command("ssh", "-tt", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "root@"+ip)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sshShell{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var n int
			if _, err := fmt.Sscanf(strings.TrimSpace(sc.Text()), "tick %d", &n); err == nil {
				s.mu.Lock()
				s.tick = n
				s.mu.Unlock()
			}
		}
		cmd.Wait()
	}()
	// The shell of the session runs the loop: typed, as a user would.
	io.WriteString(stdin, "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done\n")
	s.goesOn(t, 0, "after the login")
	return s
}

func (s *sshShell) last() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tick
}

// goesOn fails the test unless the session's shell still counts, on the
// same connection, past before.
func (s *sshShell) goesOn(t *testing.T, before int, when string) int {
	t.Helper()
	var n int
	waitLong(t, "the ssh session's shell to go on "+when, time.Minute, func() bool {
		select {
		case <-s.done:
			t.Fatalf("the ssh session ended %s (its shell had counted to %d)", when, s.last())
		default:
		}
		n = s.last()
		return n > before
	})
	return n
}

// pyCount asks the Python service for its count, or makes it one more
// (post), on a connection of its own.
func pyCount(ip string, post bool) (int, error) {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "8081"), 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	method := "GET"
	if post {
		method = "POST"
	}
	fmt.Fprintf(conn, "%s / HTTP/1.0\r\nContent-Length: 0\r\n\r\n", method)
	resp, err := io.ReadAll(conn)
	if err != nil {
		return 0, err
	}
	_, body, ok := strings.Cut(string(resp), "\r\n\r\n")
	if !ok || !strings.Contains(string(resp), " 200 ") {
		return 0, fmt.Errorf("answer %q", resp)
	}
	return strconv.Atoi(strings.TrimSpace(body))
}

// insideClients are the loops in the container, started through its
// systemd: each writes what its service acknowledged last to a file.
var insideClients = map[string]string{
	"ctrfs-redis-client":   `while :; do n=$(redis-cli INCR inside) && echo "$n" > /root/acked.redis; sleep 0.1; done`,
	"ctrfs-mariadb-client": `while :; do n=$(mariadb -N -e 'INSERT INTO ctrfs.t () VALUES (); SELECT LAST_INSERT_ID()') && echo "$n" > /root/acked.mariadb; sleep 0.1; done`,
}

// insideNow reads, in the container, each loop's last acknowledged value
// and what its service holds now.
const insideNow = `echo redis $(cat /root/acked.redis) $(redis-cli GET inside)
echo mariadb $(cat /root/acked.mariadb) $(mariadb -N -e 'SELECT MAX(id) FROM ctrfs.t')`

func (d *Daemon) startInsideClients(name string) {
	d.t.Helper()
	for unit, loop := range insideClients {
		if out, err := d.attach(name, "systemd-run", "--unit="+unit, "sh", "-c", loop); err != nil {
			d.t.Fatalf("systemd-run %s: %v: %s", unit, err, out)
		}
	}
}

// insideAcked checks that each service in the container holds at least
// what its loop had acknowledged, and returns what the loops acknowledged.
func (d *Daemon) insideAcked(name, when string) map[string]int {
	d.t.Helper()
	acked := map[string]int{}
	var out string
	waitLong(d.t, "the clients in "+name+" to have written "+when, time.Minute, func() bool {
		out, _ = d.attach(name, "sh", "-c", insideNow)
		return len(strings.Fields(out)) == 6
	})
	for _, line := range strings.Split(out, "\n") {
		var svc string
		var ack, has int
		if _, err := fmt.Sscan(line, &svc, &ack, &has); err != nil {
			d.t.Fatalf("%s: %q: %v", when, line, err)
		}
		if has < ack {
			d.t.Fatalf("%s: %s holds %d, but its client had been told %d was written: acknowledged writes lost", when, svc, has, ack)
		}
		acked[svc] = ack
	}
	return acked
}

// insideGoOn waits until each loop in the container has written past
// before: they run on.
func (d *Daemon) insideGoOn(name string, before map[string]int, when string) {
	d.t.Helper()
	waitLong(d.t, "the clients in "+name+" to go on "+when, time.Minute, func() bool {
		now := d.insideAcked(name, when)
		for svc, n := range before {
			if now[svc] <= n {
				return false
			}
		}
		return true
	})
}
