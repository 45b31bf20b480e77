// Package testbytes makes the deterministic pseudo-random bytes the tests of
// images and its subpackages cut, store and compare. It is for tests only.
package testbytes

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// Rand returns n bytes from seed: the same on every run, so failures
// reproduce and chunk boundaries are the same each time.
func Rand(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Same fails t unless got is want, saying what differs in size only: the
// bytes are too many to print.
func Same(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (got %d bytes, want %d)", what, len(got), len(want))
	}
}
