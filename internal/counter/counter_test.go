package counter

import (
	"net"
	"testing"
	"time"
)

func TestAsk(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Skipf("port 8080 taken: %v", err)
	}
	defer l.Close()
	go func() {
		for _, answer := range []string{"42\n", "not a count\n", ""} {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(answer))
			c.Close()
		}
	}()
	if n, err := Ask("127.0.0.1", time.Second, time.Second); err != nil || n != 42 {
		t.Errorf("Ask: %d, %v; want 42", n, err)
	}
	if _, err := Ask("127.0.0.1", time.Second, time.Second); err == nil {
		t.Error("Ask took a line that is no count")
	}
	if _, err := Ask("127.0.0.1", time.Second, time.Second); err == nil {
		t.Error("Ask took a connection closed without an answer")
	}
}
