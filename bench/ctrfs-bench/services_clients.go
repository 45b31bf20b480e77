package main

// The clients of the services part: each holds one TCP connection from
// this host to its service in the container and sends acknowledged writes
// one after another (Redis INCR of one key; a PostgreSQL INSERT whose
// RETURNING id is the acknowledgement), keeping when each was
// acknowledged and with what value. A write that fails (the connection
// broke, as it does when a restore takes the processes back to a snapshot
// or a raw restore does not repair TCP) makes the client connect again;
// the reconnections are counted, so that the table says where the
// connection survived.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"ctrfs/internal/redisint"
)

// wireSession is one connection of a client's protocol.
type wireSession interface {
	// write makes one acknowledged write and returns its value, which
	// grows by at least one per write while nothing is lost.
	write() (int, error)
	// read returns the value the service holds now: at least the last
	// acknowledged one, unless writes were lost.
	read() (int, error)
	close()
}

// ack is one acknowledged write.
type ack struct {
	at    time.Time
	value int
}

// ackClient writes through its protocol's sessions, one after another,
// until closed.
type ackClient struct {
	service string
	addr    string
	dial    func(net.Conn) (wireSession, error)

	mu         sync.Mutex
	acks       []ack
	reconnects int
	broke      []string // why each connection that broke did, for the report
	lastErr    error
	sess       wireSession
	stop, done chan struct{}
}

// The pause between writes (the resolution of the downtime measured), and
// how long one may wait for its answer: an operation holds it back.
const (
	ackPause       = 5 * time.Millisecond
	ackWaitTimeout = 3 * time.Minute
)

func startAckClient(service, addr string, dial func(net.Conn) (wireSession, error)) *ackClient {
	c := &ackClient{service: service, addr: addr, dial: dial, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *ackClient) run() {
	defer close(c.done)
	var s wireSession
	for {
		select {
		case <-c.stop:
			if s != nil {
				s.close()
			}
			return
		default:
		}
		if s == nil {
			conn, err := net.DialTimeout("tcp", c.addr, time.Second)
			if err == nil {
				s, err = c.dial(conn)
			}
			if err != nil {
				c.setErr(err)
				time.Sleep(ackPause)
				continue
			}
			c.mu.Lock()
			if len(c.acks) > 0 {
				c.reconnects++
			}
			c.sess = s
			c.mu.Unlock()
		}
		v, err := s.write()
		if err != nil {
			c.setErr(err)
			c.mu.Lock()
			c.broke = append(c.broke, err.Error())
			c.mu.Unlock()
			s.close()
			s = nil
			continue
		}
		c.mu.Lock()
		c.acks = append(c.acks, ack{at: time.Now(), value: v})
		c.mu.Unlock()
		time.Sleep(ackPause)
	}
}

func (c *ackClient) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// drop closes the connection in use, as a client does that knows its
// server went back in time (a snapshot's restore): the next write goes
// over a new one.
func (c *ackClient) drop() {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		s.close()
	}
}

func (c *ackClient) close() {
	close(c.stop)
	c.drop()
	<-c.done
}

// last is the last acknowledged write, and how many there were.
func (c *ackClient) last() (ack, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.acks) == 0 {
		return ack{}, 0
	}
	return c.acks[len(c.acks)-1], len(c.acks)
}

func (c *ackClient) reconnectCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnects
}

// brokeSince is why the connections that broke since the first n broke.
func (c *ackClient) brokeSince(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.broke[min(n, len(c.broke)):]...)
}

func (c *ackClient) brokeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.broke)
}

// waitAck waits for a write acknowledged after t.
func (c *ackClient) waitAck(t time.Time, timeout time.Duration) (ack, error) {
	deadline := time.Now().Add(timeout)
	for {
		if a, n := c.last(); n > 0 && a.at.After(t) {
			return a, nil
		}
		if time.Now().After(deadline) {
			c.mu.Lock()
			err := c.lastErr
			c.mu.Unlock()
			return ack{}, fmt.Errorf("%s: no write acknowledged within %s (last error: %v)", c.service, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gap is the longest time between acknowledged writes from the last one
// acknowledged by t0 to the first one after t1, and the value of that
// last one before t0; ok is false without a write acknowledged by t0.
func (c *ackClient) gap(t0, t1 time.Time) (gap time.Duration, before ack, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := -1
	for i, a := range c.acks {
		if !a.at.After(t0) {
			prev = i
			continue
		}
		if prev < 0 {
			return 0, ack{}, false
		}
		gap = max(gap, a.at.Sub(c.acks[i-1].at))
		if a.at.After(t1) {
			break
		}
	}
	if prev < 0 {
		return 0, ack{}, false
	}
	return gap, c.acks[prev], true
}

// readNow reads the service's value over a connection of its own; refused
// connections are tried again for a while, and counted (refused).
func (c *ackClient) readNow() (v, refused int, err error) {
	var conn net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; refused++ {
		if conn, err = net.DialTimeout("tcp", c.addr, 5*time.Second); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return 0, refused, err
	}
	s, err := c.dial(conn)
	if err != nil {
		return 0, refused, err
	}
	defer s.close()
	v, err = s.read()
	return v, refused, err
}

// redisSession speaks RESP on one connection: INCR and GET of one key.
type redisSession struct {
	conn *redisint.Conn
	key  string
}

func dialRedis(key string) func(net.Conn) (wireSession, error) {
	return func(conn net.Conn) (wireSession, error) {
		return &redisSession{conn: redisint.New(conn), key: key}, nil
	}
}

func (s *redisSession) write() (int, error) { return s.command("INCR", s.key) }
func (s *redisSession) read() (int, error)  { return s.command("GET", s.key) }
func (s *redisSession) close()              { s.conn.Close() }

// command sends one command and reads its integer or bulk answer.
func (s *redisSession) command(args ...string) (int, error) {
	return s.conn.Do(ackWaitTimeout, args...)
}

// pgSession speaks PostgreSQL's simple query protocol on one connection,
// as user postgres with trust authentication (servicesSetup's pg_hba
// line): the standard library has no PostgreSQL client and go.mod none.
type pgSession struct {
	conn  net.Conn
	r     *bufio.Reader
	table string
}

func dialPostgres(table string) func(net.Conn) (wireSession, error) {
	return func(conn net.Conn) (wireSession, error) {
		s := &pgSession{conn: conn, r: bufio.NewReader(conn), table: table}
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		// StartupMessage: protocol 3.0, then name/value pairs.
		body := []byte{0, 3, 0, 0}
		for _, kv := range []string{"user", "postgres", "database", "postgres"} {
			body = append(append(body, kv...), 0)
		}
		body = append(body, 0)
		msg := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
		if _, err := conn.Write(append(msg, body...)); err != nil {
			conn.Close()
			return nil, err
		}
		if _, err := s.until(); err != nil {
			conn.Close()
			return nil, err
		}
		return s, nil
	}
}

func (s *pgSession) write() (int, error) {
	return s.query("INSERT INTO " + s.table + " DEFAULT VALUES RETURNING id")
}
func (s *pgSession) read() (int, error) {
	return s.query("SELECT coalesce(max(id), 0) FROM " + s.table)
}
func (s *pgSession) close() { s.conn.Close() }

// query runs one statement that returns one integer.
func (s *pgSession) query(q string) (int, error) {
	s.conn.SetDeadline(time.Now().Add(ackWaitTimeout))
	msg := append([]byte{'Q'}, binary.BigEndian.AppendUint32(nil, uint32(len(q)+5))...)
	if _, err := s.conn.Write(append(append(msg, q...), 0)); err != nil {
		return 0, err
	}
	row, err := s.until()
	if err != nil {
		return 0, err
	}
	if row == "" {
		return 0, fmt.Errorf("postgres returned no row for %q", q)
	}
	return strconv.Atoi(row)
}

// until reads messages up to ReadyForQuery and returns the first column of
// the last data row; an ErrorResponse is the error.
func (s *pgSession) until() (string, error) {
	var row string
	var failed error
	for {
		head := make([]byte, 5)
		if _, err := io.ReadFull(s.r, head); err != nil {
			return "", err
		}
		body := make([]byte, int(binary.BigEndian.Uint32(head[1:]))-4)
		if _, err := io.ReadFull(s.r, body); err != nil {
			return "", err
		}
		switch head[0] {
		case 'R': // authentication: only "ok" (trust) is spoken here
			if binary.BigEndian.Uint32(body) != 0 {
				return "", errors.New("postgres asks for a password: its pg_hba.conf must trust the bench's address")
			}
		case 'D': // DataRow: int16 columns, then int32 length and bytes
			if len(body) >= 6 {
				if n := int32(binary.BigEndian.Uint32(body[2:])); n >= 0 && 6+int(n) <= len(body) {
					row = string(body[6 : 6+n])
				}
			}
		case 'E':
			failed = fmt.Errorf("postgres: %s", strings.Join(strings.FieldsFunc(string(body), func(r rune) bool { return r == 0 }), " "))
		case 'Z':
			return row, failed
		}
	}
}
