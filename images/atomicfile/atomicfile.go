// Package atomicfile writes the store's files so that a crash leaves each
// whole or absent: temporary names that readers and GC can tell apart,
// renames, and the fsyncs of files, directories and whole file systems that
// make them durable. It knows nothing of what the files hold.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// TempPrefix starts the names of the temporary files this process writes:
// ".tmp-", which no key or chunk name can start with, so readers and GC can
// tell them apart, then a random token of the process. A temporary file
// without the token was left by a process that died mid-write (one daemon
// uses a store at a time), so GC removes it at once; one with the token may
// be a write in progress, which runs outside the Store's lock.
var TempPrefix = ".tmp-" + processToken() + "-"

func processToken() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Write makes data appear at path all at once or not at all: it is
// written and fsynced under a temporary name (TempPrefix) in the same
// directory, then renamed. The caller syncs the directory when the rename
// itself must survive a power loss.
func Write(path string, data []byte) error { return WriteRenamed(path, data, true) }

// WriteRenamed is Write with the fsync optional, for callers that make
// many files durable at once with SyncFS.
func WriteRenamed(path string, data []byte, sync bool) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), TempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if sync {
		if err = f.Sync(); err != nil {
			return err
		}
	} else {
		// Start the write-back now, so that the SyncFS that makes a
		// whole import durable finds most of it on disk already
		// instead of writing it all while the caller waits.
		unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// SyncDir makes renames and removals in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SyncFS flushes the whole file system that holds dir: one journal commit
// for all the chunks of an import instead of one per chunk, which made
// storing a checkpoint several times slower than taking it.
func SyncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
