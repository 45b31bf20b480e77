package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"ctrfs/ops/configfile"
	"ctrfs/ops/idmap"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/templates"
)

// convert makes a stopped privileged container unprivileged: its rootfs
// shifted into the host's map (idmap.Shift, which a convert cut short
// finishes when run again), then its config given the map, last, so that
// until then it is still the privileged container it was. Saved state
// was dumped privileged and would not restore under the map: convert
// refuses it. Snapshots stay as they were: restoring one taken before
// brings back the privileged container (its config and rootfs).
func (m *Manager) convert(name string) error {
	c, err := m.containers.Open(name)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := lxcpath.RequireStatus(c, "convert", "STOPPED"); err != nil {
		return err
	}
	if m.stored.HasState(name) {
		return newError(ErrBusy, fmt.Sprintf("%s has saved state, dumped privileged: start it and stop it (not stop-stateful) first", name), nil)
	}
	path := m.containers.ConfigPath(name)
	config, err := os.ReadFile(path)
	if err != nil {
		return newError(ErrFailed, "read config of "+name, err)
	}
	if _, ok, _ := idmap.FromConfig(config); ok {
		return newError(ErrInvalid, name+" is unprivileged already (its config has lxc.idmap)", nil)
	}
	im, err := m.unprivilegedMap()
	if err != nil {
		return err
	}
	dir := filepath.Join(m.cfg.LXCPath, name)
	line, _ := configfile.Line(config, "lxc.rootfs.path")
	_, rootfs, _ := strings.Cut(line, "=")
	rootfs = strings.TrimSpace(rootfs)
	if p, ok := strings.CutPrefix(rootfs, "dir:"); ok {
		rootfs = p
	}
	if !filepath.IsAbs(rootfs) || filepath.Dir(filepath.Clean(rootfs)) != dir {
		return newError(ErrInvalid, fmt.Sprintf("convert shifts only a rootfs directory in the container's own directory; %s has lxc.rootfs.path = %q", name, rootfs), nil)
	}
	if t := templates.OfConfig(config); t != nil {
		if err := t.MakeUnprivileged(rootfs); err != nil {
			return newError(ErrFailed, "convert "+name, err)
		}
	}
	if err := idmap.Shift(rootfs, im); err != nil {
		return newError(ErrFailed, "convert "+name+" (run convert again once the cause is fixed: it goes on where it stopped)", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return newError(ErrFailed, "convert "+name, err)
	}
	if len(config) > 0 && config[len(config)-1] != '\n' {
		config = append(config, '\n')
	}
	if err := configfile.WriteAtomic(path, append(config, im.ConfigLines()...)); err != nil {
		return newError(ErrFailed, "convert "+name, err)
	}
	return nil
}

// runConvert is the ctl command's operation.
func (m *Manager) runConvert(name string) func(context.Context, *opContext) error {
	return func(context.Context, *opContext) error { return m.convert(name) }
}
