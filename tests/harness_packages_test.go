package tests

// Packages for a debian-template container, as a user installs them, from
// the host's package cache (internal/debpkg, shared with ctrfs-bench's
// services part): without the network, one download per set of packages.

import (
	"time"

	"ctrfs/internal/debpkg"
)

// installPackages installs pkgs into the running debian container name
// with dpkg, from debpkg's cache (filled with the host's apt the first
// time), as apt-get install would.
func (d *Daemon) installPackages(name string, pkgs ...string) {
	d.t.Helper()
	mirror, err := debpkg.TemplateMirror(templateCache)
	if err != nil {
		d.t.Fatal(err)
	}
	t0 := time.Now()
	dir, downloaded, err := debpkg.Dir(d.rootfs(name), mirror, pkgs)
	if err != nil {
		d.t.Fatal(err)
	}
	if downloaded {
		d.t.Logf("downloaded %v into %s in %.0f s", pkgs, dir, time.Since(t0).Seconds())
	}
	t0 = time.Now()
	n, err := debpkg.Install(d.rootfs(name), dir, func(args ...string) (string, error) { return d.attach(name, args...) })
	if err != nil {
		d.t.Fatalf("%v in %s: %v", pkgs, name, err)
	}
	d.t.Logf("installed %v (%d packages) in %.0f s", pkgs, n, time.Since(t0).Seconds())
}
