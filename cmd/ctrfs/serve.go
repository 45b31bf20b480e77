package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"ctrfs/cluster"
	"ctrfs/fs"
	"ctrfs/ops"
	"ctrfs/ops/network"
	"ctrfs/ops/storage"
	"ctrfs/ops/templates"
)

type serveFlags struct {
	mount, lxcpath, store, name string
	bridge, subnet, logLevel    string
	bind, join, secretFile      string
	metrics                     string
	template, templateCache     string
	storage                     string
	migratePort                 int
	postCopy                    bool
}

const serveHead = `usage: ctrfs serve [flags]

Mounts the control tree and serves it in the foreground. SIGINT or SIGTERM
unmounts it and exits 0; the containers keep running. Under systemd
(Type=notify) it reports READY=1 once the tree answers. See ctrfs(8).
`

// serveFlagSet defines the flags of `ctrfs serve` into f; docs/ctrfs.8.md
// must name every one (cmd/ctrfs/docs_test.go checks).
func serveFlagSet(f *serveFlags) *flag.FlagSet {
	host, _ := os.Hostname()
	set := newFlagSet("serve")
	set.StringVar(&f.mount, "mount", "/mnt/ctrfs", "mount the control tree on `DIR`, created if missing")
	set.StringVar(&f.lxcpath, "lxcpath", "/var/lib/lxc", "show the containers of the LXC path `DIR`")
	set.StringVar(&f.store, "store", "/var/lib/ctrfs", "keep saved state, snapshots and logs in `DIR`")
	set.StringVar(&f.name, "name", host, "this host's `NAME` in the tree, in events and in the cluster")
	set.StringVar(&f.bridge, "bridge", "ctrfsbr0", "attach new containers to `BRIDGE`, created if missing")
	set.StringVar(&f.subnet, "subnet", "10.87.0.0/16", "the bridge's IPv4 `SUBNET`: the bridge takes its first address, containers get static ones")
	set.StringVar(&f.template, "template", templates.DefaultName, "the `TEMPLATE` of `mkdir containers/NAME` (templates/ lists them)")
	set.StringVar(&f.storage, "storage", storage.Auto, "keep new containers' rootfs as `KIND`: btrfs subvolumes (instant snapshots), dir (plain directories), or auto (btrfs where the LXC path is on btrfs)")
	set.StringVar(&f.templateCache, "template-cache", "", "keep the templates' built rootfs archives in `DIR` (default: STORE/templates), shared by daemons that name the same one")
	set.StringVar(&f.bind, "bind", "", "gossip address `ADDR:PORT` of this host in the cluster (needs --secret-file; none: run alone)")
	set.StringVar(&f.join, "join", "", "gossip addresses `ADDR:PORT[,...]` of hosts to join (retried until they answer)")
	set.StringVar(&f.secretFile, "secret-file", "", "read the cluster's shared secret from `FILE`; it keys gossip encryption and authenticates migrations (none: run alone)")
	set.IntVar(&f.migratePort, "migrate-port", 0, "TCP `PORT` of the migration endpoint, on the --bind address (0: the gossip port + 1)")
	set.BoolVar(&f.postCopy, "post-copy-moves", false, "make every live move that starts here post-copy, mv's too, as `move HOST --post-copy` (the memory not yet copied is lost if this host dies during the copy)")
	set.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on `ADDR:PORT` at /metrics (none: off)")
	set.StringVar(&f.logLevel, "log-level", "info", "log at `LEVEL` on stderr: debug, info, warn or error")
	return set
}

func serve(args []string) int {
	f := &serveFlags{}
	if code, stop := parseFlags(serveFlagSet(f), serveHead, args, noArgs); stop {
		return code
	}
	if err := ops.ValidateName(f.name); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs serve: --name:", err)
		return 2
	}
	if _, err := templates.Lookup(f.template); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs serve: --template:", err)
		return 2
	}
	if err := storage.ValidKind(f.storage); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs serve: --storage:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs serve: --log-level:", err)
		return 2
	}
	// The recent lines go into bug reports too (containers/NAME/bugreport).
	ring := ops.NewLogRing(recentLogLines)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, ring), &slog.HandlerOptions{Level: level}))
	if err := run(f, log, ring); err != nil {
		log.Error("ctrfs stopped", "err", err)
		return 1
	}
	return 0
}

// recentLogLines is how many of the daemon's log lines a bug report holds.
const recentLogLines = 2000

func run(f *serveFlags, log *slog.Logger, ring *ops.LogRing) error {
	subnet, err := netip.ParsePrefix(f.subnet)
	if err != nil {
		return fmt.Errorf("--subnet: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	mountDir, err := filepath.Abs(f.mount)
	if err != nil {
		return err
	}
	// Caught from the start: a SIGTERM that arrives while the daemon
	// mounts (a service stopped at once, a test) waits for the mount and
	// then unmounts it, instead of killing a FUSE server that has not yet
	// taken its signals and leaving a mount behind.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := prepareMountPoint(mountDir, log); err != nil {
		return err
	}
	// The root context, cancelled at shutdown. The operations and moves
	// under way take it without its cancellation (ops.Manager and
	// cluster.Cluster's opCtx), since they run to their end first; what
	// ends with it is background work that would not outlive the process
	// anyway (a garbage collection's sweep, the watch on moves).
	ctx, shutdown := context.WithCancel(context.Background())
	defer shutdown()
	events := ops.NewEventBus()
	m, err := ops.NewManager(ops.Config{
		Host: f.name, LXCPath: f.lxcpath, StoreDir: f.store,
		Network:    network.Network{Bridge: f.bridge, Subnet: subnet, Host: f.name},
		HelperPath: self, RecentLog: ring,
		TemplateCache: f.templateCache, DefaultTemplate: f.template, Storage: f.storage,
		ReservedNames: fs.ReservedNames(), Context: ctx,
	}, events, log)
	if err != nil {
		return err
	}
	defer m.Close() // its staging directory in memory goes, on every path
	cl, err := startCluster(ctx, f, m, log)
	if err != nil {
		return err
	}
	if f.metrics != "" {
		srv, err := serveMetrics(f.metrics, m, cl, log)
		if err != nil {
			cl.Close()
			return fmt.Errorf("--metrics: %w", err)
		}
		defer srv.Close()
		log.Info("metrics: serving", "addr", f.metrics)
	}
	server, err := mountFUSE(mountDir, fs.NewRoot(m, m.Files(), cl), fs.Options())
	if err != nil {
		cl.Close()
		return err
	}
	unrecord := recordServer(mountDir, log)
	notifyReady(mountDir, log)
	log.Info("ctrfs serving", "mount", mountDir, "host", f.name, "lxcpath", f.lxcpath, "store", f.store)

	failed := make(chan error, 1) // what stopped the daemon, if not a signal
	served := make(chan struct{}) // closed once the serve loop has ended
	go func() {
		select {
		case sig := <-sigs:
			log.Info("unmounting", "signal", sig.String())
			notifyStopping(log)
		case err := <-cl.Failed():
			log.Info("unmounting", "because", err.Error())
			failed <- err
		}
		shutdown()
		cl.Close()     // peers see this host leave at once
		events.Close() // releases blocked readers of `events`
		if m, err := mountAt(mountDir); err == nil && m != nil {
			// Copies of the mount elsewhere would keep it served
			// (mountcopies.go); and server.Unmount waits for that.
			go endConnection(mountDir, m.minor, served, log)
		}
		if err := server.Unmount(); err != nil {
			// Something still holds the mount (a shell cd'ed into it):
			// detach it so that the daemon can still exit cleanly.
			log.Warn("unmount busy; detaching lazily", "err", err)
			if err := syscall.Unmount(mountDir, syscall.MNT_DETACH); err != nil {
				log.Error("lazy unmount failed", "err", err)
			}
		}
	}()
	server.Wait()
	close(served)
	unrecord()
	log.Info("unmounted", "mount", mountDir)
	select {
	case err := <-failed:
		return err
	default:
		return nil
	}
}

func startCluster(ctx context.Context, f *serveFlags, m *ops.Manager, log *slog.Logger) (*cluster.Cluster, error) {
	var secret []byte
	if f.secretFile != "" {
		var err error
		if secret, err = readSecret(f.secretFile); err != nil {
			return nil, err
		}
	}
	var join []string
	for _, a := range strings.Split(f.join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			join = append(join, a)
		}
	}
	if f.bind == "" && len(secret) > 0 {
		return nil, fmt.Errorf("--secret-file needs --bind")
	}
	cl, err := cluster.Start(cluster.Config{Host: f.name, Bind: f.bind, Join: join, Secret: secret,
		MigratePort: f.migratePort, StoreDir: f.store, PostCopyMoves: f.postCopy, Log: log, Context: ctx}, m)
	if err != nil {
		return nil, err
	}
	if len(secret) > 0 {
		log.Info("cluster: started", "bind", f.bind, "endpoint", cl.Facts().Endpoint)
	}
	return cl, nil
}

// mountFUSE mounts the tree and leaves no process forked with /dev/fuse.
// go-fuse opens it without O_CLOEXEC, and a helper that inherited it
// passed it on to the monitors LXC forks for containers, which outlive the
// daemon: a killed daemon's mount then hung instead of failing with
// ENOTCONN, and the next daemon could not recover it. The cluster and the
// manager already run (an incoming move forks helpers), so the descriptor
// is marked close-on-exec under syscall.ForkLock, as the syscall package
// has code that makes descriptors without O_CLOEXEC do: every fork of
// os/exec takes that lock for writing, so one asked for meanwhile waits
// until the descriptor is marked. Only the direct mount is tried: go-fuse's
// fallback forks fusermount, which would wait for this lock for good.
//
// It never looks into the new mount: gofs.Mount's WaitMount opens a file
// there (go-fuse's "poll hack"), a request of the daemon to itself. A
// daemon killed while that file was open could not die: its exit closed
// the file, which waits for the daemon's own answer, and kept /dev/fuse
// open meanwhile, so the kernel never failed the mount and every process
// that used it hung. The hack only spares a server that polls files of
// its own mount, which ctrfs never opens; fuse.NewServer has answered the
// kernel's INIT when it returns, so the tree is served from then on.
func mountFUSE(dir string, root gofs.InodeEmbedder, opts *gofs.Options) (*fuse.Server, error) {
	opts.DirectMountStrict = true
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	server, err := fuse.NewServer(gofs.NewNodeFS(root, opts), dir, &opts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	go server.Serve()
	if err := closeFUSEOnExec(); err != nil {
		server.Unmount()
		return nil, err
	}
	return server, nil
}

// closeFUSEOnExec marks the /dev/fuse descriptors close-on-exec.
func closeFUSEOnExec() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != "/dev/fuse" {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return fmt.Errorf("mark /dev/fuse close-on-exec: %w", err)
		}
	}
	return nil
}
