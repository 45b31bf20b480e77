package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The downtime is the longest gap from the last write acknowledged by the
// operation's start to the first one after its end; writes before and
// after that span do not count.
func TestAckClientGap(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c := &ackClient{acks: []ack{{at(0), 1}, {at(900), 2}, {at(1000), 3}, {at(1100), 4}, {at(1600), 5}, {at(1700), 6}, {at(5000), 7}}}
	gap, before, ok := c.gap(at(1050), at(1200))
	if !ok || gap != 500*time.Millisecond || before.value != 3 {
		t.Errorf("gap = %s, before %d, ok %v; want 500ms, 3, true", gap, before.value, ok)
	}
	if _, _, ok := c.gap(at(-1), at(10)); ok {
		t.Error("a span with no write acknowledged before it has a gap")
	}
}

// The PostgreSQL client speaks enough of the protocol: startup with trust,
// then simple queries answered with one row; an error is the error.
func TestPostgresSession(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go fakePostgres(t, server)
	s, err := dialPostgres("t")(client)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.write(); err != nil || v != 42 {
		t.Errorf("write = %d, %v; want 42", v, err)
	}
	if _, err := s.read(); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("read's error = %v, want the server's", err)
	}
}

func fakePostgres(t *testing.T, conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	send := func(typ byte, body []byte) {
		conn.Write(append(append([]byte{typ}, binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))...), body...))
	}
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return
	}
	io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint32(n[:]))-4)
	send('R', []byte{0, 0, 0, 0})
	send('Z', []byte{'I'})
	for {
		head := make([]byte, 5)
		if _, err := io.ReadFull(r, head); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
		io.ReadFull(r, q)
		if strings.HasPrefix(string(q), "INSERT") {
			send('D', append([]byte{0, 1, 0, 0, 0, 2}, "42"...))
			send('C', []byte("INSERT 0 1\x00"))
		} else {
			send('E', []byte("SERROR\x00Mno such table\x00\x00"))
		}
		send('Z', []byte{'I'})
	}
}
