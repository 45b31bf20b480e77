package lxcpath

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	lxc "github.com/lxc/go-lxc"
)

// A status query whose LXC monitor does not answer holds up no other
// container's: here c1's command socket is a listener that never replies.
// (With one lock around every query, c2's waited for c1's: this test hung.)
func TestStateQueriesDoNotWaitForEachOther(t *testing.T) {
	lxcpath := t.TempDir()
	for _, n := range []string{"c1", "c2"} {
		// A config is all a handle needs to be opened.
		os.MkdirAll(filepath.Join(lxcpath, n), 0o755)
		if err := os.WriteFile(filepath.Join(lxcpath, n, "config"), []byte("lxc.uts.name = "+n+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("unix", "@"+filepath.Join(lxcpath, "c1", "command"))
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	var h stateHandles
	defer h.forget("c1")
	defer h.forget("c2")
	c1 := make(chan lxc.State, 1)
	go func() {
		st, _ := h.state("c1", lxcpath)
		c1 <- st
	}()
	var conn net.Conn
	select {
	case conn = <-accepted: // c1's query waits for its answer
	case st := <-c1:
		t.Fatalf("c1's state %v without asking its socket", st)
	}
	if st, err := h.state("c2", lxcpath); err != nil || st != lxc.STOPPED {
		t.Fatalf("c2 while c1's query waits: %v, %v", st, err)
	}
	conn.Close()
	ln.Close()
	<-c1
}
