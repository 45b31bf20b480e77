package tests

// Packages for a debian-template container, as a user installs them, but
// without the network: the containers on the tests' bridge may reach no
// mirror, and a download per run would make the suite slow. The host's own
// apt (the same Debian release as the template) downloads each set once
// into packageCache, resolved against the container's own dpkg status, so
// that exactly the missing packages are there; a run copies them into the
// container and dpkg installs them inside it, where the maintainer scripts
// start the services through the container's systemd.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// packageCache holds one directory of .debs per set of packages and
// template dpkg status, kept across runs (and for the bed: tests/vmtest
// copies it to its guests, which reach no mirror).
const packageCache = "/var/cache/ctrfs/packages"

// packagesFor returns the directory of .debs that installs pkgs into the
// container name, downloading them with the host's apt the first time.
// apt reads only the container's own suite (VERSION_CODENAME of its
// os-release, main, from the mirror the template was built from), through
// a private configuration: with the host's sources it would pick
// security updates of libraries the container has, and an upgraded
// library still mapped by a running service is a deleted file that CRIU
// must then copy ("Can't dump ghost file").
func (d *Daemon) packagesFor(name string, pkgs []string) string {
	d.t.Helper()
	status, err := os.ReadFile(d.rootfs(name, "var/lib/dpkg/status"))
	if err != nil {
		d.t.Fatal(err)
	}
	suite := osReleaseValue(d.rootfs(name, "etc/os-release"), "VERSION_CODENAME")
	h := sha256.New()
	h.Write(status)
	h.Write([]byte(suite + " " + strings.Join(pkgs, " ")))
	dir := filepath.Join(packageCache, suite+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if err := os.MkdirAll(packageCache, 0o755); err != nil {
		d.t.Fatal(err)
	}
	// One download at a time for all the runs on this machine.
	lock, err := os.OpenFile(filepath.Join(packageCache, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer lock.Close()
	unix.Flock(int(lock.Fd()), unix.LOCK_EX)
	if exists(filepath.Join(dir, "complete")) {
		return dir
	}
	os.RemoveAll(dir)
	tmp := d.t.TempDir()
	for _, sub := range []string{"parts", "lists/partial", "archives/partial"} {
		if err := os.MkdirAll(filepath.Join(tmp, sub), 0o755); err != nil {
			d.t.Fatal(err)
		}
	}
	mirror := templateMirror(d.t)
	sources := fmt.Sprintf("Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n", mirror, suite)
	if err := os.WriteFile(filepath.Join(tmp, "container.sources"), []byte(sources), 0o644); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "status"), status, 0o644); err != nil {
		d.t.Fatal(err)
	}
	apt := func(args ...string) {
		opts := []string{"-qq", "-o", "Dir::Etc::SourceList=" + filepath.Join(tmp, "container.sources"),
			"-o", "Dir::Etc::SourceParts=" + filepath.Join(tmp, "parts"),
			"-o", "Dir::State::Lists=" + filepath.Join(tmp, "lists"),
			"-o", "Dir::State::status=" + filepath.Join(tmp, "status"),
			"-o", "Dir::Cache=" + tmp, "-o", "Dir::Cache::archives=" + filepath.Join(tmp, "archives") + "/",
			"-o", "APT::Sandbox::User=root"}
		if out, err := exec.Command("apt-get", append(opts, args...)...).CombinedOutput(); err != nil {
			d.t.Fatalf("apt-get %v (the container's suite %s from %s): %v\n%s", args, suite, mirror, err, out)
		}
	}
	t0 := time.Now()
	apt("update")
	apt(append([]string{"install", "--download-only", "-y", "--no-install-recommends"}, pkgs...)...)
	if err := os.Rename(filepath.Join(tmp, "archives"), dir); err != nil {
		d.t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "partial"))
	os.Remove(filepath.Join(dir, "lock"))
	if err := os.WriteFile(filepath.Join(dir, "complete"), []byte(strings.Join(pkgs, "\n")+"\n"), 0o644); err != nil {
		d.t.Fatal(err)
	}
	d.t.Logf("downloaded %v for %s into %s in %.0f s", pkgs, suite, dir, time.Since(t0).Seconds())
	return dir
}

// templateMirror is the mirror the debian template was built from, as its
// cache's info says.
func templateMirror(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(templateCache, "debian.info"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "source: "); ok {
			return v
		}
	}
	t.Fatalf("%s/debian.info names no source", templateCache)
	return ""
}

// osReleaseValue is one field of an os-release file.
func osReleaseValue(file, key string) string {
	b, _ := os.ReadFile(file)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// installPackages installs pkgs into the running debian container name
// with dpkg, from packagesFor's cache, as apt-get install would.
func (d *Daemon) installPackages(name string, pkgs ...string) {
	d.t.Helper()
	dir := d.packagesFor(name, pkgs)
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	sort.Strings(debs)
	inside := "/var/cache/ctrfs-packages"
	if err := os.MkdirAll(d.rootfs(name, inside), 0o755); err != nil {
		d.t.Fatal(err)
	}
	for _, deb := range debs {
		if out, err := exec.Command("cp", deb, d.rootfs(name, inside)).CombinedOutput(); err != nil {
			d.t.Fatalf("copy %s: %v: %s", deb, err, out)
		}
	}
	t0 := time.Now()
	// One dpkg -i of them all leaves out the packages whose
	// pre-dependencies it had not configured yet when it reached them
	// (gawk, mariadb-server); a second pass of just those installs them.
	// (apt-get install of the local files would order them, but apt 2.6
	// fails on local files that upgrade an installed package: "Pathname
	// to install is not absolute".) dpkg skips its fsyncs, most of its
	// time here: a container half installed is thrown away anyway.
	script := `cd ` + inside + ` && export DEBIAN_FRONTEND=noninteractive
dpkg -i --force-unsafe-io *.deb >/tmp/dpkg.log 2>&1 ||
dpkg -i --force-unsafe-io $(for f in *.deb; do
  dpkg-query -W -f '${Status}\n' "$(dpkg-deb -f "$f" Package)" 2>/dev/null | grep -q 'ok installed$' || echo "$f"
done) >>/tmp/dpkg.log 2>&1 </dev/null
s=$?; cd /; rm -rf ` + inside + `; [ $s = 0 ] || tail -n 40 /tmp/dpkg.log; exit $s`
	out, err := d.attach(name, "sh", "-c", script)
	if err != nil {
		d.t.Fatalf("dpkg -i %v in %s: %v\n%s", pkgs, name, err, out)
	}
	d.t.Logf("installed %v (%d packages) in %.0f s", pkgs, len(debs), time.Since(t0).Seconds())
}
