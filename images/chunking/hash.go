package chunking

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/zeebo/blake3"
)

// Chunk names say which hash made them. Store format 1 named every chunk
// by the hex SHA-256 of its content; format 2 names new chunks by the hex
// BLAKE3-256 of their content followed by Blake3Suffix, and still reads
// and checks the SHA-256 names of older chunks, so a store needs no
// migration: its old manifests keep naming old chunks, which GC removes
// once nothing names them. (New content does not dedup against them: the
// first checkpoint after an upgrade stores its chunks anew.) Manifests that
// may name BLAKE3 chunks are manifest version 2, which an older ctrfs
// refuses as too new rather than misreads; a peer that cannot read them is
// refused before a move starts (see cluster.CanTake).
//
// Why BLAKE3: hashing was the largest share of the CPU an import adds to a
// checkpoint (on these 2-core machines it competes with CRIU itself). On a
// CPU with SHA extensions, SHA-256 hashed 1 MiB chunks at about 1.9 GB/s
// of one core's time and BLAKE3 (AVX2) at about 3.7 GB/s; both are
// collision resistant, which content addressing between hosts relies on.
const Blake3Suffix = ".b3"

// HexLen is the length of either hash in hex.
const HexLen = 2 * sha256.Size

// ValidHash says whether hash is a chunk name of either form.
func ValidHash(hash string) bool {
	digest, _ := strings.CutSuffix(hash, Blake3Suffix)
	if len(digest) != HexLen {
		return false
	}
	for _, c := range digest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// IsSHA256Name says whether a valid chunk name is of store format 1.
func IsSHA256Name(hash string) bool { return len(hash) == HexLen }

// HashOf names new content: BLAKE3.
func HashOf(data []byte) string {
	sum := blake3.Sum256(data)
	return hex.EncodeToString(sum[:]) + Blake3Suffix
}

// HashAs computes the name data has under the hash that name was made
// with, so that both forms are checked by their own algorithm.
func HashAs(name string, data []byte) string {
	if IsSHA256Name(name) {
		sum := sha256.Sum256(data)
		return hex.EncodeToString(sum[:])
	}
	return HashOf(data)
}
