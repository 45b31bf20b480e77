package images

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// writeAtomic makes data appear at path all at once or not at all: it is
// written and fsynced under a temporary name in the same directory, then
// renamed. Temporary names start with ".tmp-", which no key or chunk name
// can, so readers and GC can tell them apart. The caller syncs the directory
// when the rename itself must survive a power loss.
func writeAtomic(path string, data []byte) error { return writeRenamed(path, data, true) }

// writeRenamed is writeAtomic with the fsync optional, for callers that make
// many files durable at once with syncFS.
func writeRenamed(path string, data []byte, sync bool) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
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
		// Start the write-back now, so that the syncFS that makes a
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
func SyncDir(dir string) error { return syncDir(dir) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncFS flushes the whole file system that holds dir: one journal commit
// for all the chunks of an import instead of one per chunk, which made
// storing a checkpoint several times slower than taking it.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
