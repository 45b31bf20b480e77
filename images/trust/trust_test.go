package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"ctrfs/internal/testenv"
)

// nobody plants what the tests below must not trust.
const nobody = 65534

func asRoot(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "to make files of another user")
}

func mkdir(t *testing.T, dir string, mode os.FileMode, uid int) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	return dir
}

func wantUntrusted(t *testing.T, what string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v; want a refusal saying %q", what, err, want)
	}
}

// TestTrustedRoot: a directory named on the command line is refused if
// others can write it or it is not root's, and so is one that others can
// move away or replace: through a directory they can write that is not
// sticky, or a symlink of theirs. /tmp's sticky bit and root's symlinks
// are fine.
func TestTrustedRoot(t *testing.T) {
	asRoot(t)
	base := t.TempDir()
	good := mkdir(t, filepath.Join(base, "good"), 0o755, 0)
	sticky := mkdir(t, filepath.Join(base, "sticky"), os.ModeSticky|0o777, 0)
	inSticky := mkdir(t, filepath.Join(sticky, "store"), 0o755, 0)
	open := mkdir(t, filepath.Join(base, "open"), 0o777, 0)
	inOpen := mkdir(t, filepath.Join(open, "store"), 0o755, 0)
	tmpfs := mkdir(t, filepath.Join(base, "tmpfs"), os.ModeSticky|0o777, 0)
	theirs := mkdir(t, filepath.Join(base, "theirs"), 0o755, nobody)
	inTheirs := mkdir(t, filepath.Join(theirs, "store"), 0o755, 0)
	group := mkdir(t, filepath.Join(base, "group"), 0o775, 0)
	rootLink := filepath.Join(sticky, "rootlink")
	if err := os.Symlink(good, rootLink); err != nil {
		t.Fatal(err)
	}
	theirLink := filepath.Join(sticky, "theirlink")
	if err := os.Symlink(good, theirLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(theirLink, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	relLink := filepath.Join(good, "up")
	if err := os.Symlink("../sticky/store", relLink); err != nil {
		t.Fatal(err)
	}

	for _, dir := range []string{good, inSticky, rootLink, relLink} {
		if err := TrustedRoot(dir); err != nil {
			t.Errorf("TrustedRoot(%s): %v", dir, err)
		}
	}
	for dir, want := range map[string]string{
		tmpfs:     "has mode 1777: group or others can write it",
		group:     "has mode 0775",
		theirs:    "belongs to uid 65534",
		inTheirs:  theirs + " belongs to uid 65534, not to root",
		inOpen:    open + " has mode 0777: group or others can write it, and it is not sticky",
		theirLink: theirLink + " belongs to uid 65534, not to root",
	} {
		wantUntrusted(t, "TrustedRoot("+dir+")", TrustedRoot(dir), want)
	}
}

// TestReadTrusted: a journal is read only if it is root's own regular
// file that others cannot write, never through a symlink, and a FIFO in
// its place does not block the reader.
func TestReadTrusted(t *testing.T) {
	asRoot(t)
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, uid int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chown(p, uid, uid)
		return p
	}
	own := write("own", 0o644, 0)
	if b, err := ReadTrusted(own); err != nil || string(b) != "{}" {
		t.Fatalf("ReadTrusted of root's own file: %q, %v", b, err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(own, link)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		write("theirs", 0o600, nobody): "belongs to uid 65534",
		write("open", 0o666, 0):        "has mode 0666",
		link:                           "is a symlink",
		fifo:                           "is not a regular file",
	} {
		_, err := ReadTrusted(path)
		wantUntrusted(t, "ReadTrusted("+filepath.Base(path)+")", err, want)
	}
	wantUntrusted(t, "TrustedDir of a file", TrustedDir(own), "is not a directory")
}
