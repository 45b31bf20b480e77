package lazypages

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ctrfs/images/trust"
)

// The page server of a post-copy move speaks TLS (CRIU's --tls, through
// GnuTLS). Without it, CRIU's page server listens on plain TCP and takes
// the first connection that comes: whoever makes it can ask for the
// frozen container's pages, or at least fail the move. With it, both
// ends present a certificate and accept only one that chains to the CA of
// this transfer, so a process without that CA's key cannot complete the
// handshake, read a page or feed one.
//
// The CA's key comes from a seed the caller gives: for a move, one
// derived from the cluster secret and the move's token
// (cluster/transport/secret.go), so that only members of the cluster can
// make its certificates and those of one move are worth nothing in
// another; for the lazy-pages probe, a random one. Each end's own key is random. CRIU reads the PEM files when
// its connection opens, so they stay in a fresh 0700 staging directory
// for the life of the CRIU that reads them, and are removed with it.

// PageServerTLS is one end's credentials for a post-copy transfer.
type PageServerTLS struct {
	ca, cert, key []byte // PEM
}

// NewPageServerTLS makes the credentials of one end of a transfer whose
// CA key is derived from caSeed (32 bytes): the CA's certificate and a
// certificate it signed for a fresh key.
func NewPageServerTLS(caSeed []byte) (*PageServerTLS, error) {
	if len(caSeed) != ed25519.SeedSize {
		return nil, fmt.Errorf("a page server CA seed of %d bytes, not %d", len(caSeed), ed25519.SeedSize)
	}
	caKey := ed25519.NewKeyFromSeed(caSeed)
	// Fixed fields: both ends make the same CA certificate from the seed.
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ctrfs post-copy page server CA"},
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	// A day either side: the hosts' clocks may differ, and what limits
	// a certificate's use is its CA, made for one move.
	now := time.Now()
	leaf := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ctrfs post-copy page server end"},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
	if err != nil {
		return nil, err
	}
	key, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return &PageServerTLS{
		ca:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
	}, nil
}

const (
	tlsCAFile   = "ca.pem"
	tlsCertFile = "cert.pem"
	tlsKeyFile  = "key.pem"
)

// Write puts the credentials into dir, which must be the daemon's own
// (trust.PrivateDir), each file new and 0600.
func (t *PageServerTLS) Write(dir string) error {
	if err := trust.PrivateDir(dir); err != nil {
		return err
	}
	for name, data := range map[string][]byte{tlsCAFile: t.ca, tlsCertFile: t.cert, tlsKeyFile: t.key} {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// TLSOptions are CRIU's options, as lines of its config file, for the
// credentials in dir. The certificates name no host (--tls-no-cn-verify:
// CRIU would check the peer's against the page server's address): an end
// is known by its chain to the transfer's CA, not by an address.
func TLSOptions(dir string) []string {
	return []string{"tls", "tls-no-cn-verify",
		"tls-cacert " + filepath.Join(dir, tlsCAFile),
		"tls-cert " + filepath.Join(dir, tlsCertFile),
		"tls-key " + filepath.Join(dir, tlsKeyFile)}
}

// criuArgs turns lines of CRIU's config file into its command line.
func criuArgs(lines []string) []string {
	var args []string
	for _, l := range lines {
		opt, value, ok := strings.Cut(l, " ")
		args = append(args, "--"+opt)
		if ok {
			args = append(args, value)
		}
	}
	return args
}
