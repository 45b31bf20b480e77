package cluster

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// MinSecretLen is the shortest cluster secret accepted. Whoever sees the
// gossip (encrypted with a key from the secret) or answers at a peer's
// address (see auth.go) can test guesses of the secret offline: only a
// secret no one can enumerate, 32 random bytes, makes that hopeless.
const MinSecretLen = 32

// SecretHelp says how to make a secret, for the messages that refuse one.
const SecretHelp = "make one with: head -c 32 /dev/urandom > FILE; chmod 600 FILE, and copy it to every host"

// Each use of the secret gets its own key, derived with HKDF under its own
// label: the gossip key and the migration key are independent, and neither
// is the secret.
const (
	gossipInfo     = "ctrfs gossip key v1"
	migrationInfo  = "ctrfs migration key v1"
	pageServerInfo = "ctrfs post-copy page server CA v1"
)

func deriveKey(secret []byte, info string) ([]byte, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("the cluster secret is %d bytes, fewer than %d: %s", len(secret), MinSecretLen, SecretHelp)
	}
	return hkdf.Key(sha256.New, secret, nil, info, 32)
}

// gossipKey is memberlist's AES-256 key.
func gossipKey(secret []byte) ([]byte, error) { return deriveKey(secret, gossipInfo) }

// migrationKey keys the proofs of the migration endpoint.
func migrationKey(secret []byte) ([]byte, error) { return deriveKey(secret, migrationInfo) }

// pageServerSeed is the seed of the CA key of one post-copy move's page
// server (ops.NewPageServerTLS): the move's token, in the label, makes it
// that move's alone.
func pageServerSeed(secret []byte, token string) ([]byte, error) {
	return deriveKey(secret, pageServerInfo+"\x00"+token)
}
