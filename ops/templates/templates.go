// Package templates makes the rootfs and the LXC config of a new
// container: the busybox template (busybox.go), made at each create from
// the host's busybox-static, and the debian template (debian.go, with
// what it lays over Debian in template_debian/), whose rootfs debootstrap
// builds once from the host's mirror (mirror.go) into a cache shared by
// the daemons of a host (cache.go). Every container a template makes can
// be checkpointed (see docs/containers.md). It knows nothing of the
// containers made from it: ops gives it a directory, a name and an
// address.
package templates

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"ctrfs/ops/configfile"
	"ctrfs/ops/errkind"
	"ctrfs/ops/network"
)

// Template is one kind of container that ctrfs can create. Each template's
// rootfs and config are made checkpointable (see shared/ENVIRONMENT.md):
// every container it makes can stop-stateful, snapshot and move live.
type Template struct {
	Name  string
	About string // one line for templates/NAME/info
	// rootfs makes the rootfs of a new container in dir (which does not
	// exist yet); it may first build what the template caches.
	rootfs func(ctx context.Context, env Env, dir, container string) error
	// config sets the template's own LXC config keys over the busybox
	// config that every template starts from.
	config map[string]string
	// systemd: the container runs systemd, whose services' sandboxing
	// needs mounts that LXC's default AppArmor profile denies (hostConfig).
	systemd bool
	// unprivileged changes a new rootfs for a container in a user
	// namespace (nil: nothing to change).
	unprivileged func(dir string) error
	// status is what templates/NAME/info says of the template's build:
	// when it was built and its size.
	status func(env Env) Status
}

// Env is what a template needs of the daemon that makes its containers.
type Env struct {
	CacheDir string // where templates keep what they build once
	Log      *slog.Logger
}

// Status is what templates/NAME/info says of a template's build: when it
// was built and its size, and for an archive built once where it came
// from and where it is kept ("" otherwise).
type Status struct {
	Built, Size     string
	Source, Archive string
}

// templates are the templates by name.
var all = map[string]*Template{
	busyboxTemplate.Name: busyboxTemplate,
	debianTemplate.Name:  debianTemplate,
}

// DefaultName is the template of `mkdir containers/NAME` unless `serve
// --template` says otherwise.
const DefaultName = "busybox"

var busyboxTemplate = &Template{
	Name:  "busybox",
	About: "a busybox-static rootfs, made at each create from the host's " + busyboxPath + ", with a counter service on port 8080",
	rootfs: func(_ context.Context, env Env, dir, container string) error {
		return writeRootfs(dir)
	},
	status: func(env Env) Status {
		size := ""
		if fi, err := os.Stat(busyboxPath); err == nil {
			size = fmt.Sprint(fi.Size())
		}
		return Status{Built: "at each create", Size: size}
	},
}

// Names lists the templates, sorted.
func Names() []string {
	var names []string
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup finds a template by name; an unknown one is ErrInvalid.
func Lookup(name string) (*Template, error) {
	if t, ok := all[name]; ok {
		return t, nil
	}
	return nil, errkind.New(errkind.ErrInvalid, fmt.Sprintf("no template %q; the templates are %s",
		name, strings.Join(Names(), ", ")), nil)
}

// MakeRootfs makes the rootfs of a new container in dir, an empty
// directory made for it (a subvolume on btrfs, ops/storage); a template that must be built first (debian, once per
// cache) makes it wait for the build, which ctx's end stops.
func (t *Template) MakeRootfs(ctx context.Context, env Env, dir, container string) error {
	return t.rootfs(ctx, env, dir, container)
}

// MakeUnprivileged changes a new rootfs (before its shift) for what a
// container in a user namespace cannot do.
func (t *Template) MakeUnprivileged(dir string) error {
	if t.unprivileged == nil {
		return nil
	}
	return t.unprivileged(dir)
}

// Status is what templates/NAME/info says of the template's build.
func (t *Template) Status(env Env) Status { return t.status(env) }

// Config is the LXC config of a new container of the template.
func (t *Template) Config(name, rootfs string, net network.Network, addr netip.Addr, mac string, created time.Time) []byte {
	conf := templateConfig(name, rootfs, net, addr, mac, created)
	for _, config := range []map[string]string{t.config, hostConfig(t.systemd)} {
		keys := make([]string, 0, len(config))
		for k := range config {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			conf = configfile.SetLine(conf, k, config[k])
		}
	}
	return append(conf, fmt.Sprintf("%s %s\n", templateComment, t.Name)...)
}

// OfConfig is the template a container's config says it was made from
// (its templateComment line), nil if none.
func OfConfig(config []byte) *Template {
	for _, line := range strings.Split(string(config), "\n") {
		if name, ok := strings.CutPrefix(line, templateComment); ok {
			return all[strings.TrimSpace(name)]
		}
	}
	return nil
}

// templateComment names the template in the config, for the operator.
const templateComment = "# ctrfs.template ="
