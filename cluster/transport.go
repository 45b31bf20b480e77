package cluster

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/rpc"
	"strings"
	"time"

	"ctrfs/ops"
)

// The migration endpoint speaks net/rpc over mutual TLS 1.3. Both sides
// present a certificate whose key is derived from the shared secret and
// accept only a peer presenting the same key: a peer proves it holds the
// secret by completing the handshake, before a single request is read,
// and everything after is encrypted.
func tlsConfig(secret []byte) (*tls.Config, error) {
	seed := sha256.Sum256(append([]byte("ctrfs migration\x00"), secret...))
	key := ed25519.NewKeyFromSeed(seed[:])
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ctrfs cluster"},
		NotBefore:    time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	want := key.Public().(ed25519.PublicKey)
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("peer sent no certificate")
		}
		cert, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		if pub, ok := cert.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(want) {
			return errors.New("peer does not hold the cluster secret")
		}
		return nil
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // replaced by verify: the key is the identity
		VerifyPeerCertificate: verify,
	}, nil
}

const dialTimeout = 5 * time.Second

// dial connects to a peer's endpoint; the handshake is complete (the peer
// proved the secret) when it returns.
func dial(endpoint string, conf *tls.Config) (*rpc.Client, error) {
	d := &net.Dialer{Timeout: dialTimeout}
	conn, err := tls.DialWithDialer(d, "tcp", endpoint, conf)
	if err != nil {
		return nil, ops.NewError(ops.ErrUnreachable, fmt.Sprintf("cannot reach %s: %v", endpoint, err))
	}
	return rpc.NewClientWithCodec(newClientCodec(conn)), nil
}

// Errors cross the wire as "kind: message" so that the caller gets the
// same errno the other host's operation had.
func wireError(err error) error {
	if err == nil {
		return nil
	}
	for name, kind := range ops.Kinds {
		if errors.Is(err, kind) {
			return errors.New(name + ": " + err.Error())
		}
	}
	return errors.New("failed: " + err.Error())
}

// callError turns what an RPC returned into an ops error: the peer's own
// error with its kind, or EHOSTUNREACH for a broken connection.
func callError(peer string, err error) error {
	if err == nil {
		return nil
	}
	var se rpc.ServerError
	if errors.As(err, &se) {
		name, msg, _ := strings.Cut(string(se), ": ")
		if kind, ok := ops.Kinds[name]; ok {
			return ops.NewError(kind, msg)
		}
		return ops.NewError(ops.ErrFailed, string(se))
	}
	return ops.NewError(ops.ErrUnreachable, fmt.Sprintf("lost %s: %v", peer, err))
}

// Probe connects to a migration endpoint with the secret, as a migration
// does, and asks the host for its facts: it fails if the host does not
// answer or does not hold the same secret.
func Probe(endpoint string, secret []byte) (Facts, error) {
	conf, err := tlsConfig(secret)
	if err != nil {
		return Facts{}, err
	}
	client, err := dial(endpoint, conf)
	if err != nil {
		return Facts{}, err
	}
	defer client.Close()
	var f Facts
	return f, callError(endpoint, client.Call("Host.Facts", true, &f))
}
