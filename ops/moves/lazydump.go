package moves

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"ctrfs/images"
	"ctrfs/ops/criulog"
	"ctrfs/ops/errkind"
	"ctrfs/ops/lazypages"
	"ctrfs/ops/lxchelper"
	"ctrfs/ops/opctx"
	"ctrfs/ops/testhooks"
)

// The source's side of a post-copy move (see cluster/postcopy.go): a
// `criu dump --lazy-pages --leave-running` of the held container (savedstate/hold.go:
// frozen and off the wire) whose page server hands out the memory of the
// frozen tasks until the target has pulled every page.
//
// What CRIU does with the tasks when that dump ends (cr-dump.c
// cr_dump_finish, page-xfer.c page_server_serve): whatever the end of the
// transfer, --leave-running lets them go, and they stay frozen, since CRIU
// restores the freezer state it found; it unlocks their network, TCP
// connections included, before the lazy transfer starts, and the hold
// keeps the wire off until they die or resume. A CRIU killed mid-transfer
// leaves them frozen too. So the tasks are never lost to CRIU, and
// ResumeAfterLazyDump releases them with their connections.

// PageServerTLS is one end's credentials for a post-copy transfer
// (lazypages/tls.go), as cluster/ makes them.
type PageServerTLS = lazypages.PageServerTLS

// NewPageServerTLS makes the credentials of one end of a transfer whose
// CA key is derived from caSeed (lazypages.NewPageServerTLS).
func NewPageServerTLS(caSeed []byte) (*PageServerTLS, error) {
	return lazypages.NewPageServerTLS(caSeed)
}

// LazyPages is nil if CRIU lazy pages, which post-copy moves need, work
// on this host, or why not (lazypages.Probe).
func LazyPages() error { return lazypages.Probe() }

// LazyDump is a container's lazy dump under way.
type LazyDump struct {
	o    *Outgoing
	Dir  string // the images (all but the lazy memory) and dump.log
	done chan error
	end  *error // the helper's result, once it has exited
}

// lazyServing is what CRIU logs once its lazy page server listens.
const lazyServing = "Starting lazy pages server"

// StartLazyDump dumps the running container lazily, its page server
// listening on addr:port and taking only a connection whose certificate
// chains to creds' CA (lazypages/tls.go), and returns once the server listens:
// the container is down from here. If the dump fails before that, CRIU
// has let the tasks run on: the container is RUNNING and the error says
// why. The dump runs on after it returns, until ctx's end stops it.
func (o *Outgoing) StartLazyDump(ctx context.Context, addr string, port int, creds *PageServerTLS) (*LazyDump, error) {
	if err := o.m.containers.RequireStatus(o.name, "move --post-copy", "RUNNING"); err != nil {
		return nil, err
	}
	dir, err := o.m.staging.Dir(o.name, "lazy", 16<<20)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "prepare post-copy move of "+o.name, err)
	}
	tlsDir, err := o.m.stageTLS(o.name, creds)
	if err != nil {
		os.RemoveAll(dir)
		return nil, errkind.New(errkind.ErrFailed, "prepare the page server's TLS for "+o.name, err)
	}
	testhooks.PausePoint("postcopy-freeze")
	if err := o.m.saved.Hold(ctx, o.name, "move"); err != nil {
		os.RemoveAll(dir)
		os.RemoveAll(tlsDir)
		return nil, err
	}
	d := &LazyDump{o: o, Dir: dir, done: make(chan error, 1)}
	oc := &opctx.Op{}
	go func() {
		err := o.m.containers.RunCRIUHelper(ctx, oc, o.m.containers.ImagesSizeHint(o.name), lxchelper.CheckpointLazy, o.name, dir, addr, strconv.Itoa(port), tlsDir)
		os.RemoveAll(tlsDir) // its key is not left behind the CRIU that used it
		d.done <- err
	}()
	log := filepath.Join(dir, "dump.log")
	for !criulog.Has(log, lazyServing) {
		if ended, err := d.Ended(); ended {
			if err == nil {
				err = fmt.Errorf("CRIU ended before serving any page")
			}
			// The log is read before its directory goes: read after,
			// the error named no cause ("criu output:", LXC's last line).
			log := criulog.Combined(log, oc.Log)
			os.RemoveAll(dir)
			if err := o.m.saved.Release(o.name); err != nil {
				return nil, err
			}
			return nil, o.m.saved.DumpFailed(o.name, err, log)
		}
		time.Sleep(5 * time.Millisecond)
	}
	testhooks.PausePoint("postcopy-serving", net.JoinHostPort(addr, strconv.Itoa(port)))
	// CRIU has written every image but the memory (lxchelper/freezestate.go).
	if err := lxchelper.ThawedImages(dir); err != nil {
		d.Stop()
		if rerr := o.m.saved.Release(o.name); rerr != nil {
			return nil, rerr
		}
		return nil, errkind.New(errkind.ErrFailed, "prepare the post-copy dump of "+o.name, err)
	}
	return d, nil
}

// Ended says whether the dump has ended, and how: nil once every page was
// pulled or the connection closed (the tasks are stopped), an error after
// a transfer error or a killed CRIU (the tasks run, or are frozen).
func (d *LazyDump) Ended() (bool, error) {
	if d.end != nil {
		return true, *d.end
	}
	select {
	case err := <-d.done:
		d.end = &err
		return true, err
	default:
		return false, nil
	}
}

// Images puts the dump's images into the store: a manifest that holds its
// chunks until the caller releases it.
func (d *LazyDump) Images(ctx context.Context) (*images.Manifest, error) {
	mf, _, err := d.o.m.images.ImportDir(ctx, d.Dir)
	if err != nil {
		return nil, errkind.New(errkind.ErrFailed, "store the post-copy dump of "+d.o.name, err)
	}
	return mf, nil
}

// Stop ends the dump if it still runs: its CRIU is killed, which leaves
// the tasks frozen (ResumeAfterLazyDump thaws them). It returns once the
// dump has ended, and removes the images.
func (d *LazyDump) Stop() {
	defer os.RemoveAll(d.Dir)
	if ended, _ := d.Ended(); ended {
		return
	}
	for _, pid := range lazypages.CRIUPids(d.Dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	err := <-d.done
	d.end = &err
}

// StopLazyDump stops the CRIU of a lazy dump into dir left by a daemon
// that died (see LazyDump.Stop), and waits until it is gone.
func StopLazyDump(dir string) {
	for i := 0; i < 100; i++ {
		pids := lazypages.CRIUPids(dir)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.RemoveAll(dir)
}

// ExplainCRIU says why the CRIU run that wrote log failed, or "".
func ExplainCRIU(log []byte) string { return criulog.Explain(log) }

// Log is CRIU's log of the dump.
func (d *LazyDump) Log() []byte {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dump.log"))
	return b
}

// ResumeAfterLazyDump brings back the container whose lazy dump ended
// without the target taking it (see the top of this file): released from
// its hold, the same tasks with their connections. The dump must have
// ended (LazyDump.Stop), or CRIU could stop the tasks again after this.
// A container dumped by an earlier ctrfs (--leave-stopped, no hold) gets
// its cgroup thawed, its tasks continued and CRIU's network locks
// removed; its TCP connections stay in CRIU's repair mode.
func (o *Outgoing) ResumeAfterLazyDump() error {
	return o.m.ResumeAfterLazyDump(o.name)
}

// ResumeAfterLazyDump is Outgoing.ResumeAfterLazyDump for a caller that
// holds the container's lock (settling a move after a crash).
func (m *Moves) ResumeAfterLazyDump(name string) error {
	c, err := m.containers.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	pid := c.InitPid()
	if !c.Running() || pid <= 0 {
		return errkind.New(errkind.ErrFailed, fmt.Sprintf("%s has no processes any more: its memory was lost", name), nil)
	}
	if m.saved.Held(name) != nil {
		return m.saved.Release(name)
	}
	if err := lxchelper.ThawAfterDump(c, pid); err != nil {
		return errkind.New(errkind.ErrFailed, "thaw the processes of "+name+" after CRIU's dump", err)
	}
	if err := continueNamespace(pid); err != nil {
		return errkind.New(errkind.ErrFailed, "continue the processes of "+name, err)
	}
	if err := lxchelper.UnlockNetwork(pid); err != nil {
		return errkind.New(errkind.ErrFailed, "unlock the network of "+name+" after CRIU's dump", err)
	}
	m.Announce(name)
	return nil
}

// continueNamespace sends SIGCONT to every process in the pid namespace
// whose init is pid.
func continueNamespace(pid int) error {
	return lxchelper.SignalNamespace(pid, syscall.SIGCONT)
}

// stageTLS writes the credentials into a fresh staging directory of their
// own (not the images': those go into the store and to the other host).
// The caller removes it once the CRIU that reads it has ended.
func (m *Moves) stageTLS(name string, t *PageServerTLS) (string, error) {
	dir, err := m.staging.Dir(name, "tls", 64<<10)
	if err != nil {
		return "", err
	}
	if err := t.Write(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}
