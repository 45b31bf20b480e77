package transport

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"

	"ctrfs/ops"
)

// How the migration endpoint knows a peer holds the cluster secret, and
// why nothing it sends lets anyone test guesses of the secret offline.
//
// The connection is TLS 1.3 with a certificate made at random when the
// daemon starts: it encrypts, but proves nothing, and it is the same
// whatever the secret (an earlier version derived the certificate's key
// from the secret with one SHA-256, and showed it to anyone who connected:
// a free offline test of any guess). Then, inside the connection:
//
//  1. The client sends HMAC(K, "client" || E).
//  2. The server checks it. If it is wrong it sends one fixed byte and
//     closes; if it is right it sends another fixed byte and
//     HMAC(K, "server" || E).
//  3. The client checks that, and only then sends a request.
//
// K is migrationKey(secret), E is the TLS exporter of this connection
// (ExportKeyingMaterial): both ends compute the same E, and no one else
// can, and it is new with every handshake. So:
//
//   - Someone watching the network sees TLS records only.
//   - Someone who connects to an endpoint gets the random certificate and,
//     for any proof it sends, the same refusal byte: an online test of one
//     guess per connection, and nothing to take away and test offline. This
//     holds because the server proves itself only to a client that has
//     proven itself first; a server that answered with its proof first
//     would hand every connecting stranger an HMAC to test guesses against.
//   - A proof is worth nothing elsewhere: a machine in the middle has a
//     different E with each side, so a proof it relays fails, and the two
//     directions use different labels, so a client's proof reflected back
//     to it is not a server's.
//   - What is left: the client proves first, to whoever answers at the
//     address it dials, and that one could test guesses against the
//     client's proof offline. A client dials only endpoints that gossip
//     (encrypted and authenticated with the secret) announced, that its own
//     journal recorded, or that an operator gave `ctrfs probe`; and the
//     secret is at least 32 bytes, made at random (secret.go), which no
//     search of guesses reaches. Removing even that would take a PAKE,
//     which neither the standard library nor golang.org/x offer.
const (
	exporterLabel = "EXPORTER-ctrfs-migration-auth-v1"
	proofSize     = sha256.Size
	authTimeout   = 10 * time.Second // handshake and proofs; a silent peer does not hold a connection
	dialTimeout   = 5 * time.Second
)

// The server's answer to the client's proof; neither depends on the secret.
const (
	refused  byte = 0
	accepted byte = 1
)

// Auth is a daemon's half of the protocol above: the migration key and
// the TLS configs of both ends, made once at start (NewAuth).
type Auth struct {
	key            []byte
	server, client *tls.Config
}

// NewAuth derives the migration key from secret and makes a random
// certificate for the endpoint.
func NewAuth(secret []byte) (*Auth, error) {
	key, err := migrationKey(secret)
	if err != nil {
		return nil, err
	}
	cert, err := randomCertificate()
	if err != nil {
		return nil, err
	}
	return &Auth{
		key: key,
		server: &tls.Config{
			MinVersion:             tls.VersionTLS13,
			Certificates:           []tls.Certificate{cert},
			SessionTicketsDisabled: true, // every connection a full handshake, with its own E
		},
		// The certificate proves nothing (it is random): the proofs
		// authenticate the server, bound to this connection by E.
		client: &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true},
	}, nil
}

// randomCertificate is a self-signed certificate for a fresh Ed25519 key.
func randomCertificate() (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ctrfs migration endpoint"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

func (a *Auth) proof(role string, conn *tls.Conn) ([]byte, error) {
	st := conn.ConnectionState()
	e, err := st.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte(role + "\x00"))
	mac.Write(e)
	return mac.Sum(nil), nil
}

// errNoSecret is a peer that failed its proof.
var errNoSecret = errors.New("it does not hold this host's cluster secret")

// accept runs the server's side on a new connection: it returns the
// connection once the client has proven the secret, and closes it
// otherwise.
func (a *Auth) accept(raw net.Conn) (*tls.Conn, error) {
	conn := tls.Server(raw, a.server)
	conn.SetDeadline(time.Now().Add(authTimeout))
	err := conn.Handshake()
	var want []byte
	if err == nil {
		want, err = a.proof("client", conn)
	}
	got := make([]byte, proofSize)
	if err == nil {
		_, err = io.ReadFull(conn, got)
	}
	if err == nil && !hmac.Equal(got, want) {
		conn.Write([]byte{refused})
		err = errNoSecret
	}
	var mine []byte
	if err == nil {
		mine, err = a.proof("server", conn)
	}
	if err == nil {
		_, err = conn.Write(append([]byte{accepted}, mine...))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// dial connects to an endpoint and runs the client's side: it returns the
// connection once both sides have proven the secret. A peer that does not
// answer, or does not hold the secret, is EHOSTUNREACH.
func (a *Auth) dial(endpoint string) (*tls.Conn, error) {
	d := peerDialer()
	conn, err := tls.DialWithDialer(d, "tcp", endpoint, a.client)
	if err != nil {
		return nil, ops.NewError(ops.ErrUnreachable, fmt.Sprintf("cannot reach %s: %v", endpoint, err))
	}
	conn.SetDeadline(time.Now().Add(authTimeout))
	mine, err := a.proof("client", conn)
	if err == nil {
		_, err = conn.Write(mine)
	}
	answer := make([]byte, 1+proofSize)
	if err == nil {
		_, err = io.ReadFull(conn, answer[:1])
	}
	if err == nil && answer[0] != accepted {
		err = fmt.Errorf("it refused this host's proof: it does not hold the same cluster secret (wrong --secret-file?)")
	}
	if err == nil {
		_, err = io.ReadFull(conn, answer[1:])
	}
	var want []byte
	if err == nil {
		want, err = a.proof("server", conn)
	}
	if err == nil && !hmac.Equal(answer[1:], want) {
		err = fmt.Errorf("its proof is wrong: it does not hold the same cluster secret (wrong --secret-file?)")
	}
	if err != nil {
		conn.Close()
		return nil, ops.NewError(ops.ErrUnreachable, fmt.Sprintf("%s: %v", endpoint, err))
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// Serve accepts connections on ln and hands each that proved the secret
// to handle; the others go to refused.
func (a *Auth) Serve(ln net.Listener, handle func(net.Conn), refused func(net.Addr, error)) {
	for {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			conn, err := a.accept(raw)
			if err != nil {
				refused(raw.RemoteAddr(), err)
				return
			}
			handle(conn)
		}()
	}
}
