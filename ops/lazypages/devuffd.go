package lazypages

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// devUserfaultfd is the device (Linux 6.1 and later) whose
// USERFAULTFD_IOC_NEW makes a userfaultfd without the capability the
// syscall wants; root's alone (0600).
const devUserfaultfd = "/dev/userfaultfd"

// noDevUserfaultfd says why the restored tasks of an unprivileged
// container cannot get their userfaultfd from /dev/userfaultfd here, ""
// if they can: the device must exist, and the criu on PATH must use it
// (ctrfs's patch 0008, scripts/criu-patches).
func noDevUserfaultfd() string {
	if st, err := os.Stat(devUserfaultfd); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return "there is no " + devUserfaultfd + " (Linux 6.1 or later)"
	}
	path, err := exec.LookPath("criu")
	if err != nil {
		return "there is no criu"
	}
	if !criuUsesDevUserfaultfd.check(path) {
		return fmt.Sprintf("%s does not use %s (build it with ctrfs's patches, scripts/criu-patches/0008)", path, devUserfaultfd)
	}
	return ""
}

// criuUsesDevUserfaultfd remembers, per criu binary, whether it names
// /dev/userfaultfd. A patched CRIU's --version is upstream's, and only a
// CRIU that opens the device names it, so the binary is the honest
// witness. Facts are read often and the binary is megabytes: it is read
// again only when it changes (an upgrade under a running daemon).
var criuUsesDevUserfaultfd = &binaryMention{needle: []byte(devUserfaultfd)}

// binaryMention caches whether a file holds needle, keyed by the file's
// path, size and modification time.
type binaryMention struct {
	needle []byte

	mu    sync.Mutex
	path  string
	size  int64
	mtime time.Time
	has   bool
}

func (b *binaryMention) check(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if path == b.path && st.Size() == b.size && st.ModTime().Equal(b.mtime) {
		return b.has
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	b.path, b.size, b.mtime, b.has = path, st.Size(), st.ModTime(), bytes.Contains(data, b.needle)
	return b.has
}
