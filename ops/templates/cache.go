package templates

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"ctrfs/images/atomicfile"
	"ctrfs/images/trust"
	"ctrfs/ops/configfile"
	"ctrfs/ops/errkind"
	"ctrfs/ops/rootfstar"
)

// archiveCache is a template's rootfs, built once and kept as DIR/NAME.tar.zst
// beside DIR/NAME.info (what it was built from, and when). Building takes
// minutes, so it is shared: creates that need it while it is being built
// wait for that build, in this daemon (a mutex) and in others using the
// same directory (a lock file). It is built in a scratch directory and
// renamed into place when complete, so a build cut short (a killed daemon,
// a full disk) leaves nothing that is then trusted; its leftovers are
// removed by the next build.
type archiveCache struct {
	dir, name string
	recipe    string // what the archive must have been built from
	// build makes the rootfs in dir, writing its output to out, and says
	// where it came from.
	build func(ctx context.Context, dir string, out io.Writer) (source string, err error)
	log   *slog.Logger
}

var (
	cacheMu    sync.Mutex
	cacheLocks = map[string]*sync.Mutex{} // archive path -> build lock
	cacheBusy  = map[string]time.Time{}   // archive path -> build started
)

func (c *archiveCache) archive() string { return filepath.Join(c.dir, c.name+".tar.zst") }
func (c *archiveCache) info() string    { return filepath.Join(c.dir, c.name+".info") }
func (c *archiveCache) buildLog() string {
	return filepath.Join(c.dir, c.name+".build.log")
}

// readInfo parses NAME.info.
func (c *archiveCache) readInfo() map[string]string {
	data, err := trust.ReadTrusted(c.info())
	if err != nil {
		return nil
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			kv[k] = v
		}
	}
	return kv
}

// ready says whether the archive is there, complete and of the recipe.
func (c *archiveCache) ready() bool {
	_, _, ok := c.built()
	return ok
}

// built is ready with what it read: the archive's stat and NAME.info.
func (c *archiveCache) built() (os.FileInfo, map[string]string, bool) {
	if c.untrusted() != nil {
		return nil, nil, false
	}
	fi, err := os.Stat(c.archive())
	if err != nil {
		return nil, nil, false
	}
	info := c.readInfo()
	return fi, info, info["recipe"] == c.recipe
}

// untrusted says why the archive or its info, if there, could have been
// made or changed by another user (trust.TrustedFile): the archive
// becomes a container's root filesystem. Such files are neither used nor
// replaced by a build, as an operator may have copied them in from
// another host, and only they know.
func (c *archiveCache) untrusted() error {
	for _, f := range []string{c.archive(), c.info()} {
		if err := trust.TrustedFile(f); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// ensure returns the archive's path, building it first if it is not ready.
func (c *archiveCache) ensure(ctx context.Context) (string, error) {
	if err := c.untrusted(); err != nil {
		return "", errkind.New(errkind.ErrFailed, fmt.Sprintf("the %s template's archive cannot be trusted: %v "+
			"(if you put it there, make it root's alone: chown root:root, chmod go-w; "+
			"else remove it, and the next create builds it again)", c.name, err), nil)
	}
	if c.ready() {
		return c.archive(), nil
	}
	cacheMu.Lock()
	mu, ok := cacheLocks[c.archive()]
	if !ok {
		mu = &sync.Mutex{}
		cacheLocks[c.archive()] = mu
	}
	cacheMu.Unlock()
	mu.Lock()
	defer mu.Unlock()

	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return "", errkind.New(errkind.ErrFailed, "template cache "+c.dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(c.dir, c.name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", errkind.New(errkind.ErrFailed, "template cache "+c.dir, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", errkind.New(errkind.ErrFailed, "lock the template cache "+c.dir, err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if c.ready() { // another daemon built it meanwhile
		return c.archive(), nil
	}

	cacheMu.Lock()
	cacheBusy[c.archive()] = time.Now()
	cacheMu.Unlock()
	defer func() {
		cacheMu.Lock()
		delete(cacheBusy, c.archive())
		cacheMu.Unlock()
	}()
	c.log.Info("building a template; creates of it wait", "template", c.name, "cache", c.dir)
	t0 := time.Now()
	if err := c.buildArchive(ctx); err != nil {
		return "", errkind.New(errkind.ErrFailed, fmt.Sprintf("build the %s template (its output is in %s)", c.name, c.buildLog()), err)
	}
	c.log.Info("template built", "template", c.name, "seconds", time.Since(t0).Seconds())
	return c.archive(), nil
}

// buildArchive builds the rootfs and archives it, under the lock.
func (c *archiveCache) buildArchive(ctx context.Context) error {
	leftovers, _ := filepath.Glob(filepath.Join(c.dir, "."+c.name+".build-*"))
	for _, l := range leftovers {
		os.RemoveAll(l)
	}
	tmp, err := os.MkdirTemp(c.dir, "."+c.name+".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out, err := os.Create(c.buildLog())
	if err != nil {
		return err
	}
	defer out.Close()

	t0 := time.Now()
	rootfs := filepath.Join(tmp, "rootfs")
	source, err := c.build(ctx, rootfs, out)
	if err != nil {
		return err
	}
	partial := filepath.Join(tmp, "archive.tar.zst")
	if err := createArchive(rootfs, partial); err != nil {
		return err
	}
	// The old archive goes first, then the new info, then the archive:
	// whatever is cut short, an archive never sits beside the info of
	// another recipe.
	if err := os.Remove(c.archive()); err != nil && !os.IsNotExist(err) {
		return err
	}
	info := fmt.Sprintf("recipe: %s\nsource: %s\nbuilt: %s\nbuild-seconds: %.0f\n",
		c.recipe, source, time.Now().UTC().Format(time.RFC3339), time.Since(t0).Seconds())
	if err := configfile.WriteAtomic(c.info(), []byte(info)); err != nil {
		return err
	}
	if err := os.Rename(partial, c.archive()); err != nil {
		return err
	}
	return atomicfile.SyncDir(c.dir)
}

// status is what templates/NAME/info says of the archive.
func (c *archiveCache) status() Status {
	cacheMu.Lock()
	started, busy := cacheBusy[c.archive()]
	cacheMu.Unlock()
	if busy {
		return Status{Built: "building since " + started.UTC().Format(time.RFC3339)}
	}
	if err := c.untrusted(); err != nil {
		return Status{Built: "not trusted: " + err.Error()}
	}
	fi, info, ok := c.built()
	if !ok {
		return Status{Built: "not built yet"}
	}
	return Status{Built: info["built"], Size: fmt.Sprint(fi.Size()), Source: info["source"], Archive: c.archive()}
}

// createArchive writes dir as a zstd-compressed tar archive, synced.
func createArchive(dir, archive string) error {
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	enc, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	cmd := exec.Command("tar", append([]string{"--create", "--sort=name", "--file", "-", "--directory", dir}, append(rootfstar.Flags, ".")...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = enc, &stderr
	if err := cmd.Run(); err != nil {
		enc.Close()
		return fmt.Errorf("tar: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// extractArchive unpacks an archive of createArchive into dir, an empty
// directory (a subvolume on btrfs) or none yet.
func extractArchive(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	dec, err := zstd.NewReader(f)
	if err != nil {
		return err
	}
	defer dec.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("tar", append([]string{"--extract", "--same-permissions", "--file", "-", "--directory", dir}, rootfstar.Flags...)...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = dec, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tar: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// runLogged runs a command with its output going to out; the error quotes
// the output's last line. ctx's end kills it.
func runLogged(ctx context.Context, out io.Writer, name string, args ...string) error {
	var tail tailWriter
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = io.MultiWriter(out, &tail)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, tail.last())
	}
	return nil
}

// tailWriter keeps the last few KiB written to it.
type tailWriter struct{ b []byte }

func (t *tailWriter) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailWriter) last() string {
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	return lines[len(lines)-1]
}
