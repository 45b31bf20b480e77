package templates

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The debian template: Debian 12 (bookworm) with systemd as init, made
// checkpointable. Its rootfs is debootstrap's, built once from the host's
// configured Debian mirror and cached as an archive (debianCache); each
// new container is that archive unpacked, with the template's changes laid
// over it (template_debian/, listed in its etc/ctrfs-template/README, which
// says why each is there) and an identity of its own: hostname, machine-id
// and ssh host keys.

//go:embed all:template_debian
var debianOverlay embed.FS

const debianOverlayRoot = "template_debian"

// debianSuite and debianPackages are what debootstrap installs: minbase
// plus the services the template runs.
const debianSuite = "bookworm"

var debianPackages = []string{"systemd", "systemd-sysv", "dbus", "iproute2", "openssh-server",
	"cron", "procps", "python3", "nginx-light"}

var debianTemplate = &Template{
	Name: "debian",
	About: "Debian 12 (bookworm) with systemd, sshd, nginx, cron and a counter service on port 8080, " +
		"made checkpointable (see /etc/ctrfs-template/README in it); built once with debootstrap from the host's Debian mirror",
	rootfs: func(ctx context.Context, env Env, dir, container string) error {
		// Built first if it is not yet, which takes debootstrap's few
		// minutes.
		archive, err := debianCache(env).ensure(ctx)
		if err != nil {
			return err
		}
		if err := extractArchive(archive, dir); err != nil {
			return fmt.Errorf("unpack the debian template: %w", err)
		}
		return customizeDebian(dir, container)
	},
	config: map[string]string{
		// systemd halts on SIGRTMIN+3 and reboots on SIGINT; with
		// busybox's SIGUSR1, `stop` would wait its whole timeout and
		// then kill.
		"lxc.signal.halt":   "SIGRTMIN+3",
		"lxc.signal.reboot": "SIGINT",
		// For ssh logins; a pty held open is dumped and restored with
		// the session.
		"lxc.pty.max": "16",
	},
	systemd:      true,
	unprivileged: maskUnits(debianUnprivilegedMasks),
	status:       func(env Env) Status { return debianCache(env).status() },
}

// debianUnprivilegedMasks are the units an unprivileged container masks:
// its root may not mount debugfs (sys-kernel-debug.mount failed, and
// the system was degraded where a privileged one is running), nor, on
// hosts with AppArmor (stock Debian: the bed), configfs
// (sys-kernel-config.mount: `apparmor="DENIED" operation="mount"
// fstype="configfs"` under lxc-container-default-with-nesting; this VM
// has no AppArmor and mounted it). Also in etc/ctrfs-template/README.
var debianUnprivilegedMasks = []string{"sys-kernel-debug.mount", "sys-kernel-config.mount"}

// maskUnits links units to /dev/null under /etc/systemd/system.
func maskUnits(units []string) func(dir string) error {
	return func(dir string) error {
		for _, u := range units {
			p := filepath.Join(dir, "etc/systemd/system", u)
			os.Remove(p)
			if err := os.Symlink("/dev/null", p); err != nil {
				return err
			}
		}
		return nil
	}
}

// debianUnits are the symlinks the template adds under
// /etc/systemd/system: units it enables, and units it masks (-> /dev/null).
var debianUnits = map[string]string{
	"multi-user.target.wants/ctrfs-counter.service":      "/etc/systemd/system/ctrfs-counter.service",
	"multi-user.target.wants/ctrfs-ssh-hostkeys.service": "/etc/systemd/system/ctrfs-ssh-hostkeys.service",
	// LXC gives eth0 its static address (lxc.net.0.ipv4.address), the
	// one ctrfs allocated; networkd managing eth0 as well fails ("Numerical
	// result out of range"), and its user (systemd-network) would be a
	// task of another uid for CRIU. Masked, so that it cannot be enabled
	// by accident.
	"systemd-networkd.service":             "/dev/null",
	"systemd-networkd.socket":              "/dev/null",
	"systemd-networkd-wait-online.service": "/dev/null",
}

// customizeDebian lays the template's changes over a freshly unpacked
// rootfs and gives the container its own identity.
func customizeDebian(root, container string) error {
	err := fs.WalkDir(debianOverlay, debianOverlayRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, debianOverlayRoot), "/")
		dst := filepath.Join(root, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := debianOverlay.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if path.Dir(rel) == "usr/local/sbin" {
			mode = 0o755
		}
		return os.WriteFile(dst, data, mode)
	})
	if err != nil {
		return err
	}
	for link, target := range debianUnits {
		p := filepath.Join(root, "etc/systemd/system", link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	}
	if err := runNginxAsRoot(root); err != nil {
		return err
	}
	return setDebianIdentity(root, container)
}

// runNginxAsRoot has nginx's workers run as root: on machines whose root
// lacks CAP_SYS_RESOURCE, CRIU cannot read the limits of a task of another
// uid (see etc/ctrfs-template/README).
func runNginxAsRoot(root string) error {
	p := filepath.Join(root, "etc/nginx/nginx.conf")
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	s := strings.Replace(string(data), "user www-data;",
		"# ctrfs: workers run as root; see /etc/ctrfs-template/README.\nuser root;", 1)
	return os.WriteFile(p, []byte(s), 0o644)
}

// setDebianIdentity gives a container its hostname, a machine-id of its
// own and no ssh host keys (ctrfs-ssh-hostkeys.service makes new ones at
// its first boot). The machine-id is written, not left empty: systemd
// takes an empty one as a first boot, mounts a transient id over the file
// until it commits it, and applies the unit presets.
func setDebianIdentity(root, container string) error {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	files := map[string]string{
		"etc/hostname":   container + "\n",
		"etc/hosts":      fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", container),
		"etc/machine-id": hex.EncodeToString(id) + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	os.Remove(filepath.Join(root, "var/lib/dbus/machine-id")) // a copy of the template's
	keys, err := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	return nil
}

// debianCache is the template's cached archive.
func debianCache(env Env) *archiveCache {
	return &archiveCache{
		dir:    env.CacheDir,
		name:   "debian",
		recipe: debianRecipe(),
		build:  buildDebianRootfs,
		log:    env.Log,
	}
}

// debianRecipe says what the archive holds; an archive built from another
// recipe is built again.
func debianRecipe() string {
	return fmt.Sprintf("debootstrap --variant=minbase --include=%s %s", strings.Join(debianPackages, ","), debianSuite)
}

// buildDebianRootfs runs debootstrap into dir from the host's mirror.
func buildDebianRootfs(ctx context.Context, dir string, out io.Writer) (source string, err error) {
	mirror := hostDebianMirror()
	args := []string{"--variant=minbase", "--include=" + strings.Join(debianPackages, ","), debianSuite, dir, mirror}
	if err := runLogged(ctx, out, "debootstrap", args...); err != nil {
		return "", fmt.Errorf("%w (is debootstrap installed, and %s reachable?)", err, mirror)
	}
	// Package lists are stale in a week and the .debs are installed:
	// neither belongs in every container.
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*"} {
		files, _ := filepath.Glob(filepath.Join(dir, glob))
		for _, f := range files {
			os.Remove(f)
		}
	}
	return mirror, nil
}
