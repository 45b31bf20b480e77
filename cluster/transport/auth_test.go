package transport

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/rpc"
	"strings"
	"testing"

	"ctrfs/ops"
)

func randomSecret(t *testing.T) []byte {
	b := make([]byte, MinSecretLen)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// endpoint serves the echo service as the daemon serves its own, behind
// the secret's proofs; it returns the address and the requests served.
func endpoint(t *testing.T, secret []byte) (string, chan bool) {
	t.Helper()
	a, err := NewAuth(secret)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := rpc.NewServer()
	served := make(chan bool, 4)
	srv.RegisterName("Host", &echo{served})
	go a.Serve(ln, func(c net.Conn) { srv.ServeConn(c) }, func(net.Addr, error) {})
	return ln.Addr().String(), served
}

// TestSecretAuthenticates: the endpoint serves a peer with the secret and
// refuses one without it before any request.
func TestSecretAuthenticates(t *testing.T) {
	secret := randomSecret(t)
	addr, served := endpoint(t, secret)

	good, _ := NewAuth(secret)
	client, err := Dial(addr, good)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := client.Call("Host.Echo", "hi", &out); err != nil || out != "hi" {
		t.Fatalf("with the secret: %q %v", out, err)
	}
	client.Close()

	bad, _ := NewAuth(randomSecret(t))
	client, err = Dial(addr, bad)
	if err == nil {
		err = client.Call("Host.Echo", "hi", &out)
		client.Close()
	}
	if err == nil {
		t.Fatal("a peer without the secret was served")
	}
	if !errors.Is(err, ops.ErrUnreachable) || !strings.Contains(err.Error(), "secret") {
		t.Errorf("a peer without the secret is told: %v", err)
	}
	if len(served) != 1 {
		t.Fatalf("%d requests served; only the one with the secret should be", len(served))
	}

	// A plain TCP client gets nothing either.
	conn, err := net.Dial("tcp", addr)
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

// TestEndpointRevealsNothing: a client without the secret gets nothing
// that depends on it, so nothing to test guesses against offline: the
// certificate is random (two daemons with one secret show different ones;
// a certificate derived from the secret would be the same), and all the
// server sends after the handshake, to any proof but the right one, is one
// byte that is the same whatever the server's secret.
func TestEndpointRevealsNothing(t *testing.T) {
	secret := randomSecret(t)
	var certs [][]byte
	var answers [][]byte
	for _, s := range [][]byte{secret, secret, randomSecret(t)} {
		addr, served := endpoint(t, s)
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, conn.ConnectionState().PeerCertificates[0].Raw)
		// The server reads a whole proof before it writes anything, so
		// what it sends until it closes is all it sends a stranger.
		conn.Write(make([]byte, proofSize))
		answer, _ := io.ReadAll(conn)
		conn.Close()
		answers = append(answers, answer)
		if len(served) != 0 {
			t.Fatal("a client without the secret was served")
		}
	}
	if bytes.Equal(certs[0], certs[1]) {
		t.Error("two daemons with the same secret show the same certificate: it is derived from the secret")
	}
	for i, a := range answers {
		if !bytes.Equal(a, []byte{refused}) {
			t.Errorf("server %d answered a wrong proof with %x, not the refusal byte alone", i, a)
		}
	}
}

// TestServerProvesTheSecret: a client with the secret does not take an
// endpoint that accepts its proof without proving the secret in turn.
func TestServerProvesTheSecret(t *testing.T) {
	impostor, _ := NewAuth(randomSecret(t))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", impostor.server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		io.ReadFull(conn, make([]byte, proofSize))
		conn.Write(append([]byte{accepted}, make([]byte, proofSize)...))
		io.ReadAll(conn)
	}()
	a, _ := NewAuth(randomSecret(t))
	client, err := Dial(ln.Addr().String(), a)
	if err == nil {
		client.Close()
		t.Fatal("the client took an endpoint that did not prove the secret")
	}
	if !strings.Contains(err.Error(), "proof is wrong") {
		t.Errorf("the client is told: %v", err)
	}
}

// TestShortSecretRefused: the keys are not derived from a short secret,
// nor from one too regular to be random.
func TestShortSecretRefused(t *testing.T) {
	if _, err := NewAuth([]byte("s3cret")); err == nil || !strings.Contains(err.Error(), "head -c 32 /dev/urandom") {
		t.Errorf("a 6-byte secret: %v", err)
	}
	if _, err := GossipKey(make([]byte, MinSecretLen-1)); err == nil {
		t.Error("a gossip key from a 31-byte secret")
	}
	for _, weak := range []string{strings.Repeat("a", MinSecretLen), strings.Repeat("\x00", MinSecretLen)} {
		if _, err := migrationKey([]byte(weak)); err == nil || !strings.Contains(err.Error(), "head -c 32 /dev/urandom") {
			t.Errorf("a migration key from %q: %v", weak, err)
		}
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
		sent := WireError(ops.NewError(kind, "the reason"))
		got := CallError("peer", rpc.ServerError(sent.Error()))
		if !errors.Is(got, kind) || !strings.Contains(got.Error(), "the reason") {
			t.Errorf("%s: came back as %v", name, got)
		}
	}
	if got := CallError("peer", rpc.ErrShutdown); !errors.Is(got, ops.ErrUnreachable) {
		t.Errorf("a broken connection: %v", got)
	}
}
