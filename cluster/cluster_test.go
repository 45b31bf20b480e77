package cluster

import (
	"crypto/tls"
	"errors"
	"net"
	"net/rpc"
	"strings"
	"testing"

	"ctrfs/ops"
)

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"4.2.1", "4.2", 1}, {"4.2", "4.2.0", 0}, {"3.19", "4.2", -1},
		{"6.18.44-fc-v782", "6.18.44", 0}, {"6.1.0-13-amd64", "6.18.44", -1}, {"", "4.2", -1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestCanTake(t *testing.T) {
	src := Facts{Host: "a", Arch: "amd64", Kernel: "6.18.4", CRIU: "4.2", CPUFlags: []string{"avx2", "sse4_2"}}
	ok := src
	ok.Host, ok.Kernel, ok.CPUFlags = "b", "6.19", []string{"avx2", "avx512f", "sse4_2"}
	if err := CanTake(src, ok); err != nil {
		t.Errorf("a newer host with more features: %v", err)
	}
	for what, mutate := range map[string]func(*Facts){
		"arch":   func(f *Facts) { f.Arch = "arm64" },
		"avx2":   func(f *Facts) { f.CPUFlags = []string{"sse4_2"} },
		"kernel": func(f *Facts) { f.Kernel = "6.1.0" },
		"CRIU":   func(f *Facts) { f.CRIU = "3.19" },
	} {
		dst := ok
		mutate(&dst)
		if err := CanTake(src, dst); err == nil || !strings.Contains(err.Error(), what) {
			t.Errorf("target with other %s: %v", what, err)
		}
	}
}

// TestSecretAuthenticates: the endpoint serves a peer with the secret and
// refuses one without it before any request.
func TestSecretAuthenticates(t *testing.T) {
	server, err := tlsConfig([]byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := rpc.NewServer()
	served := make(chan bool, 4)
	srv.RegisterName("Host", &echo{served})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if conn.(*tls.Conn).Handshake() != nil {
					conn.Close()
					return
				}
				srv.ServeConn(conn)
			}()
		}
	}()

	good, _ := tlsConfig([]byte("right"))
	client, err := dial(ln.Addr().String(), good)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := client.Call("Host.Echo", "hi", &out); err != nil || out != "hi" {
		t.Fatalf("with the secret: %q %v", out, err)
	}
	client.Close()

	bad, _ := tlsConfig([]byte("wrong"))
	client, err = dial(ln.Addr().String(), bad)
	if err == nil {
		err = client.Call("Host.Echo", "hi", &out)
		client.Close()
	}
	if err == nil {
		t.Fatal("a peer without the secret was served")
	}
	if len(served) != 1 {
		t.Fatalf("%d requests served; only the one with the secret should be", len(served))
	}

	// A plain TCP client gets nothing either.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	conn.Close()
	if strings.Contains(string(buf[:n]), "hi") {
		t.Fatal("plain TCP was answered")
	}
}

type echo struct{ served chan bool }

func (e *echo) Echo(in string, out *string) error {
	e.served <- true
	*out = in
	return nil
}

func TestWireErrorsKeepTheirKind(t *testing.T) {
	for name, kind := range ops.Kinds {
		sent := wireError(ops.NewError(kind, "the reason"))
		got := callError("peer", rpc.ServerError(sent.Error()))
		if !errors.Is(got, kind) || !strings.Contains(got.Error(), "the reason") {
			t.Errorf("%s: came back as %v", name, got)
		}
	}
	if got := callError("peer", rpc.ErrShutdown); !errors.Is(got, ops.ErrUnreachable) {
		t.Errorf("a broken connection: %v", got)
	}
}
