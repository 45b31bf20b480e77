package transport

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

// A secret must also look random: 32 bytes of one value (`aaaa…`, NULs)
// or of a handful are as easy to guess as a short one. Random bytes have
// about 30 distinct values in 32 and no value more than a few times; a
// passphrase of a few words has fewer. These bounds refuse what no random
// source makes, at practically no risk to a secret that one made.
const (
	minDistinctBytes = 16 // distinct byte values, at least
	maxByteShare     = 4  // no byte value makes up more than 1/maxByteShare
)

// CheckSecret refuses a cluster secret that is too short or too regular
// to be random bytes. Its error reads after "holds" and says how to make
// one. Every use of a secret goes through it (cmd/ctrfs's readSecret, deriveKey), so
// that the daemon, `ctrfs probe` and the key derivation agree.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("a secret of %d bytes; it needs at least %d random bytes: %s", len(secret), MinSecretLen, SecretHelp)
	}
	var count [256]int
	distinct := 0
	for _, b := range secret {
		if count[b] == 0 {
			distinct++
		}
		count[b]++
	}
	if distinct < minDistinctBytes {
		return fmt.Errorf("a secret of only %d distinct byte values (random bytes have at least %d); it needs %d random bytes: %s",
			distinct, minDistinctBytes, MinSecretLen, SecretHelp)
	}
	for b, n := range count {
		if n*maxByteShare > len(secret) {
			return fmt.Errorf("a secret in which the byte 0x%02x makes up %d of its %d bytes (random bytes are not so repetitive); it needs %d random bytes: %s",
				b, n, len(secret), MinSecretLen, SecretHelp)
		}
	}
	return nil
}

// Each use of the secret gets its own key, derived with HKDF under its own
// label: the gossip key and the migration key are independent, and neither
// is the secret.
const (
	gossipInfo     = "ctrfs gossip key v1"
	migrationInfo  = "ctrfs migration key v1"
	pageServerInfo = "ctrfs post-copy page server CA v1"
)

func deriveKey(secret []byte, info string) ([]byte, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, fmt.Errorf("the cluster is given %w", err)
	}
	return hkdf.Key(sha256.New, secret, nil, info, 32)
}

// GossipKey is memberlist's AES-256 key.
func GossipKey(secret []byte) ([]byte, error) { return deriveKey(secret, gossipInfo) }

// migrationKey keys the proofs of the migration endpoint.
func migrationKey(secret []byte) ([]byte, error) { return deriveKey(secret, migrationInfo) }

// PageServerSeed is the seed of the CA key of one post-copy move's page
// server (moves.NewPageServerTLS): the move's token, in the label, makes it
// that move's alone.
func PageServerSeed(secret []byte, token string) ([]byte, error) {
	return deriveKey(secret, pageServerInfo+"\x00"+token)
}
