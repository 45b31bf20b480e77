package images

import (
	"os"
	"path/filepath"
)

// writeAtomic makes data appear at path all at once or not at all: it is
// written and fsynced under a temporary name in the same directory, then
// renamed. Temporary names start with ".tmp-", which no key or chunk name
// can, so readers and GC can tell them apart. The caller syncs the directory
// when the rename itself must survive a power loss.
func writeAtomic(path string, data []byte) (err error) {
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
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
