package ops

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ctrfs/ops/idmap"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/network"
	"ctrfs/ops/storage"
	"ctrfs/ops/templates"
)

// Create makes a container from the default template.
func (m *Manager) Create(name string) error { return m.CreateWith(name, CreateOptions{}) }

// CreateWith makes a container from a template, privileged or not
// (privilege.go). It is built under a hidden name and renamed into place,
// so a half-made container never shows. A template that must be built
// first (debian, once per cache) makes the create wait for the build.
func (m *Manager) CreateWith(name string, opts CreateOptions) error {
	if err := m.validateNewName(name); err != nil {
		return err
	}
	template := opts.Template
	if template == "" {
		template = m.DefaultTemplate()
	}
	return m.ledger.run(m.opCtx(), operation{name: name, what: "create", fn: func(ctx context.Context, _ *opContext) error {
		tmpl, err := templates.Lookup(template)
		if err != nil {
			return err
		}
		var im *idmap.Map
		if !opts.privileged() {
			// Before the rootfs: a host without a range fails at once.
			mp, err := m.unprivilegedMap()
			if err != nil {
				return err
			}
			im = &mp
		}
		dir := filepath.Join(m.cfg.LXCPath, name)
		if _, err := os.Lstat(dir); err == nil {
			return newError(ErrExists, fmt.Sprintf("container %q exists", name), nil)
		}
		if err := m.renames.setAsideLeftovers(name); err != nil {
			return err
		}
		tmp := filepath.Join(m.cfg.LXCPath, "."+name+".creating")
		os.RemoveAll(tmp)
		// The rootfs is made empty first, a subvolume where the host
		// keeps them so (ops/storage); the template fills it.
		err = os.Mkdir(tmp, 0o755)
		if err == nil {
			err = m.containers.Storage().MakeRootfs(filepath.Join(tmp, "rootfs"))
		}
		if err == nil {
			err = tmpl.MakeRootfs(ctx, templateEnv(m.cfg, m.log), filepath.Join(tmp, "rootfs"), name)
		}
		if err != nil {
			os.RemoveAll(tmp)
			return newError(ErrFailed, "create "+name, err)
		}
		if im != nil {
			// Once, here: a start never shifts. The directory stays
			// root's; its root may only pass through to the rootfs.
			err := tmpl.MakeUnprivileged(filepath.Join(tmp, "rootfs"))
			if err == nil {
				err = idmap.Shift(filepath.Join(tmp, "rootfs"), *im)
			}
			if err == nil {
				err = os.Chmod(tmp, 0o711)
			}
			if err != nil {
				os.RemoveAll(tmp)
				return newError(ErrFailed, "create "+name, err)
			}
		}
		// The address is taken after the rootfs, which may have waited
		// minutes for a template build: a create meanwhile must not
		// have taken it.
		if _, err := os.Lstat(dir); err == nil {
			os.RemoveAll(tmp)
			return newError(ErrExists, fmt.Sprintf("container %q exists", name), nil)
		}
		if err := m.writeNewConfig(tmpl, name, tmp, im); err != nil {
			os.RemoveAll(tmp)
			// A peer that did not answer the address claim, or
			// claims that kept meeting, keep their errno.
			for _, kind := range []error{ErrUnreachable, ErrBusy} {
				if errors.Is(err, kind) {
					return newError(kind, "create "+name, err)
				}
			}
			return newError(ErrFailed, "create "+name, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			os.RemoveAll(tmp)
			return newError(ErrFailed, "create "+name, err)
		}
		return nil
	}})
}

// writeNewConfig allocates the new container's address and writes its
// config into the directory being made; an unprivileged container's (im
// not nil) has its map.
func (m *Manager) writeNewConfig(tmpl *templates.Template, name, tmp string, im *idmap.Map) error {
	m.createMu.Lock()
	defer m.createMu.Unlock()
	addr, release, err := m.claims.allocate(name)
	if err != nil {
		return err
	}
	// Pending until the config holds it: from then on the LXC path says
	// it is taken, to this host and to the others' claims.
	defer release()
	conf := tmpl.Config(name, filepath.Join(m.cfg.LXCPath, name, "rootfs"), m.cfg.Network, addr,
		network.MACAddress(m.cfg.Host, name), time.Now())
	if im != nil {
		conf = append(conf, im.ConfigLines()...)
	}
	return os.WriteFile(filepath.Join(tmp, "config"), conf, 0o600)
}

// Destroy removes a stopped container with everything ctrfs keeps of it.
func (m *Manager) Destroy(name string) error {
	if !m.Exists(name) {
		return newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	err := m.ledger.run(m.opCtx(), operation{name: name, what: "destroy", fn: func(context.Context, *opContext) error {
		c, err := m.containers.Open(name)
		if err != nil {
			return err
		}
		defer c.Release()
		if _, err := lxcpath.RequireStatus(c, "destroy", "STOPPED"); err != nil {
			return err
		}
		if err := c.Destroy(); err != nil {
			return newError(ErrFailed, "destroy "+name, err)
		}
		return m.stored.DropStoreData(name)
	}})
	if err == nil { // what is kept of the container that is gone
		m.ledger.forget(name)
		m.createdTimes.forget(m.containers.ConfigPath(name))
		m.containers.Forget(name)
	}
	return err
}

// Info is the `info` file of a container, in docs/ctrfs.5.md's order.
func (m *Manager) Info(name string) ([]KeyValue, error) {
	c, err := m.containers.Open(name)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	st := lxcpath.StatusOf(c)
	kv := []KeyValue{{Key: "name", Value: name}, {Key: "status", Value: st}}
	pid, ipv4, ipv6, mem := "", "", "", ""
	if st != "STOPPED" {
		pid = fmt.Sprint(c.InitPid())
		if a, err := c.IPv4Addresses(); err == nil {
			ipv4 = strings.Join(a, " ")
		}
		if a, err := c.IPv6Addresses(); err == nil {
			ipv6 = strings.Join(a, " ")
		}
		if b, err := c.MemoryUsage(); err == nil {
			mem = fmt.Sprint(int64(b))
		}
	}
	if ipv4 == "" {
		ipv4 = configuredAddress(m.containers.ConfigPath(name))
	}
	kv = append(kv, KeyValue{Key: "pid", Value: pid}, KeyValue{Key: "ipv4", Value: ipv4}, KeyValue{Key: "ipv6", Value: ipv6},
		KeyValue{Key: "memory", Value: mem}, KeyValue{Key: "created", Value: m.createdTimes.at(m.containers.ConfigPath(name)).UTC().Format(time.RFC3339)})
	config, _ := os.ReadFile(m.containers.ConfigPath(name))
	kv = append(kv, privilegeInfo(config)...)
	kind := ""
	if rootfs, err := lxcpath.RootfsOf(c); err == nil {
		kind = string(storage.KindOf(rootfs))
	}
	kv = append(kv, KeyValue{Key: "storage", Value: kind})
	kv = append(kv, m.stored.Info(name)...)
	mode := m.saved.RestoreMode(name)
	r, p := m.ledger.get(name)
	kv = append(kv, KeyValue{Key: "last-op", Value: r.lastOp})
	secs := ""
	if r.lastOp != "" {
		secs = fmt.Sprintf("%.3f", r.lastOpDur.Seconds())
	}
	kv = append(kv, KeyValue{Key: "last-op-seconds", Value: secs})
	kv = append(kv, KeyValue{Key: "restore-mode", Value: mode})
	kv = append(kv, r.extra...)
	if p != nil {
		kv = append(kv, p.KeyValues()...)
	}
	return kv, nil
}

// FormatInfo renders `key: value` lines.
func FormatInfo(kv []KeyValue) []byte {
	var b bytes.Buffer
	for _, p := range kv {
		fmt.Fprintf(&b, "%s: %s\n", p.Key, p.Value)
	}
	return b.Bytes()
}

// configuredAddress is the static address in a config, shown while stopped.
func configuredAddress(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "lxc.net.0.ipv4.address" {
			a, _, _ := strings.Cut(strings.TrimSpace(v), "/")
			return a
		}
	}
	return ""
}
