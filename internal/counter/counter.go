// Package counter is the client of the templates' counter service (a
// count kept in memory, told to every connection on TCP port 8080) that
// tests/ and tests/vmtest share: a count that goes on over a checkpoint or
// a move shows the processes kept their memory.
package counter

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Ask connects to ip:8080 once and returns the count it is told; dial and
// read bound the connection and the answer.
func Ask(ip string, dial, read time.Duration) (int, error) {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "8080"), dial)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(read))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read: %v (got %q)", err, line)
	}
	return strconv.Atoi(strings.TrimSpace(line))
}
