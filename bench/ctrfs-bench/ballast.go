package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Ballast makes the container's rootfs big like a distribution's, so that
// what a snapshot or a move does with the rootfs shows in the figures:
// --ballast-mib MiB under /var/lib/ballast, a third of it in several
// thousand small files (a distribution's /usr is mostly those), the rest in
// files of ballastLarge bytes. Each file is half random bytes and half
// text, so that it compresses about as much as real binaries do.
const (
	ballastDir    = "var/lib/ballast"
	ballastSmall  = 16 << 10 // average size of the small files
	ballastLarge  = 32 << 20
	ballastPerDir = 200 // small files per directory
)

// writeBallast fills rootfs/var/lib/ballast with mib MiB, unless a ballast
// of that size is already there (a --keep container of an earlier run).
func writeBallast(rootfs string, mib int) error {
	dir := filepath.Join(rootfs, ballastDir)
	stamp := filepath.Join(dir, "mib")
	if data, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(data)) == strconv.Itoa(mib) {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	total := int64(mib) << 20
	small := total / 3
	src := rand.NewChaCha8([32]byte{'c', 't', 'r', 'f', 's'})
	rng := rand.New(src)
	write := func(path string, size int64) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		data := make([]byte, size)
		half := size / 2
		src.Read(data[:half])
		line := []byte(fmt.Sprintf("%s: ballast line of a benchmark container\n", filepath.Base(path)))
		for i := half; i < size; i++ {
			data[i] = line[(i-half)%int64(len(line))]
		}
		return os.WriteFile(path, data, 0o644)
	}
	n := 0
	for written := int64(0); written < small; n++ {
		size := int64(1<<10 + rng.IntN(2*ballastSmall-1<<10))
		path := filepath.Join(dir, "small", fmt.Sprintf("d%03d", n/ballastPerDir), fmt.Sprintf("f%05d", n))
		if err := write(path, size); err != nil {
			return err
		}
		written += size
	}
	for i, left := 0, total-small; left > 0; i++ {
		size := min(left, ballastLarge)
		if err := write(filepath.Join(dir, "large", fmt.Sprintf("blob%03d", i)), size); err != nil {
			return err
		}
		left -= size
	}
	fmt.Printf("ctrfs-bench: ballast of %d MiB in the rootfs: %d small files and %d MiB in files of %d MiB\n",
		mib, n, (total-small)>>20, ballastLarge>>20)
	return os.WriteFile(stamp, []byte(strconv.Itoa(mib)+"\n"), 0o644)
}
