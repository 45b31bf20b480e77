package lazypages

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Two ends made from one seed accept each other's certificate; an end
// made from another seed is refused by both.
func TestPageServerTLSChains(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	source, err := NewPageServerTLS(seed)
	if err != nil {
		t.Fatal(err)
	}
	target, err := NewPageServerTLS(seed)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := NewPageServerTLS(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(source.ca, target.ca) {
		t.Error("two ends made different CA certificates from one seed")
	}
	if bytes.Equal(source.key, target.key) {
		t.Error("two ends have the same key")
	}
	verify := func(ca, cert []byte) error {
		roots := x509.NewCertPool()
		roots.AddCert(parsePEM(t, ca))
		_, err := parsePEM(t, cert).Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	if err := verify(source.ca, target.cert); err != nil {
		t.Errorf("the source refuses the target: %v", err)
	}
	if err := verify(target.ca, source.cert); err != nil {
		t.Errorf("the target refuses the source: %v", err)
	}
	if verify(source.ca, stranger.cert) == nil || verify(target.ca, stranger.cert) == nil {
		t.Error("an end of another CA is accepted")
	}
	if _, err := NewPageServerTLS(seed[:16]); err == nil {
		t.Error("a short seed is taken")
	}
}

// The files are 0600 in a directory of the daemon's own, and CRIU's
// options name them.
func TestPageServerTLSFiles(t *testing.T) {
	creds, err := NewPageServerTLS(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o755)
	if err := creds.Write(open); err == nil {
		t.Error("credentials written into a directory others may enter")
	}
	dir := filepath.Join(base, "tls")
	os.Mkdir(dir, 0o700)
	if err := creds.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tlsCAFile, tlsCertFile, tlsKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	if err := creds.Write(dir); err == nil {
		t.Error("credentials written over files already there")
	}
	args := strings.Join(criuArgs(TLSOptions(dir)), " ")
	want := "--tls --tls-no-cn-verify --tls-cacert " + filepath.Join(dir, tlsCAFile) +
		" --tls-cert " + filepath.Join(dir, tlsCertFile) + " --tls-key " + filepath.Join(dir, tlsKeyFile)
	if args != want {
		t.Errorf("CRIU's arguments: %s\nwant %s", args, want)
	}
}
