// Package redisint speaks just enough of Redis's protocol (RESP) for the
// clients of the tests and the bench: one command at a time on one
// connection, whose answer is an integer (INCR) or a bulk string holding
// one (GET; a key not set reads as 0). It knows nothing else of Redis.
package redisint

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Conn is one connection to Redis.
type Conn struct {
	conn net.Conn
	r    *bufio.Reader
}

// New speaks RESP on conn.
func New(conn net.Conn) *Conn { return &Conn{conn: conn, r: bufio.NewReader(conn)} }

// Do sends one command and reads its integer answer within timeout (long
// where a checkpoint or a move holds the answer back).
func (c *Conn) Do(timeout time.Duration, args ...string) (int, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	c.conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		return 0, err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	line = strings.TrimSpace(line)
	switch {
	case line == "$-1": // GET of a key not set
		return 0, nil
	case strings.HasPrefix(line, "$"):
		if line, err = c.r.ReadString('\n'); err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(line))
	case strings.HasPrefix(line, ":"):
		return strconv.Atoi(line[1:])
	}
	return 0, fmt.Errorf("redis answered %q", line)
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }
