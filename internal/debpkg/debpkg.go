// Package debpkg installs Debian packages into a debian-template
// container as a user would, but without the network: the containers on a
// ctrfs bridge may reach no mirror, and a download per run would make the
// tests and the bench slow. The host's own apt (the same Debian release as
// the template) downloads each set once into Cache, resolved against the
// container's own dpkg status, so that exactly the missing packages are
// there; Install copies them into the container and dpkg installs them
// inside it, where the maintainer scripts start the services through the
// container's systemd. The end-to-end tests (tests/services_*) and
// ctrfs-bench's services part share it.
package debpkg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Cache holds one directory of .debs per set of packages and template
// dpkg status, kept across runs (and for the bed: tests/vmtest copies it
// to its guests, which reach no mirror).
const Cache = "/var/cache/ctrfs/packages"

// Dir returns the directory of .debs that installs pkgs into the
// container whose rootfs is given, downloading them with the host's apt
// from mirror the first time (downloaded says so). apt reads only the
// container's own suite (VERSION_CODENAME of its os-release, main),
// through a private configuration: with the host's sources it would pick
// security updates of libraries the container has, and an upgraded
// library still mapped by a running service is a deleted file that CRIU
// must then copy ("Can't dump ghost file").
func Dir(rootfs, mirror string, pkgs []string) (dir string, downloaded bool, err error) {
	status, err := os.ReadFile(filepath.Join(rootfs, "var/lib/dpkg/status"))
	if err != nil {
		return "", false, err
	}
	suite := OSReleaseValue(filepath.Join(rootfs, "etc/os-release"), "VERSION_CODENAME")
	h := sha256.New()
	h.Write(status)
	h.Write([]byte(suite + " " + strings.Join(pkgs, " ")))
	dir = filepath.Join(Cache, suite+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if err := os.MkdirAll(Cache, 0o755); err != nil {
		return "", false, err
	}
	// One download at a time for all the runs on this machine.
	lock, err := os.OpenFile(filepath.Join(Cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", false, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", false, fmt.Errorf("lock %s: %w", Cache, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir, false, nil
	}
	os.RemoveAll(dir)
	if err := download(dir, mirror, suite, status, pkgs); err != nil {
		return "", false, err
	}
	return dir, true, nil
}

// download has apt fetch pkgs, and what they need beyond the dpkg status
// given, into dir.
func download(dir, mirror, suite string, status []byte, pkgs []string) error {
	tmp, err := os.MkdirTemp(Cache, ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, sub := range []string{"parts", "lists/partial", "archives/partial"} {
		if err := os.MkdirAll(filepath.Join(tmp, sub), 0o755); err != nil {
			return err
		}
	}
	sources := fmt.Sprintf("Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n", mirror, suite)
	if err := os.WriteFile(filepath.Join(tmp, "container.sources"), []byte(sources), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "status"), status, 0o644); err != nil {
		return err
	}
	apt := func(args ...string) error {
		opts := []string{"-qq", "-o", "Dir::Etc::SourceList=" + filepath.Join(tmp, "container.sources"),
			"-o", "Dir::Etc::SourceParts=" + filepath.Join(tmp, "parts"),
			"-o", "Dir::State::Lists=" + filepath.Join(tmp, "lists"),
			"-o", "Dir::State::status=" + filepath.Join(tmp, "status"),
			"-o", "Dir::Cache=" + tmp, "-o", "Dir::Cache::archives=" + filepath.Join(tmp, "archives") + "/",
			"-o", "APT::Sandbox::User=root"}
		if out, err := exec.Command("apt-get", append(opts, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %v (the container's suite %s from %s): %v\n%s", args, suite, mirror, err, out)
		}
		return nil
	}
	if err := apt("update"); err != nil {
		return err
	}
	if err := apt(append([]string{"install", "--download-only", "-y", "--no-install-recommends"}, pkgs...)...); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, "archives"), dir); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(dir, "partial"))
	os.Remove(filepath.Join(dir, "lock"))
	return os.WriteFile(filepath.Join(dir, "complete"), []byte(strings.Join(pkgs, "\n")+"\n"), 0o644)
}

// TemplateMirror is the mirror the debian template was built from, as the
// template cache's debian.info says.
func TemplateMirror(templateCache string) (string, error) {
	b, err := os.ReadFile(filepath.Join(templateCache, "debian.info"))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "source: "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s/debian.info names no source", templateCache)
}

// OSReleaseValue is one field of an os-release file.
func OSReleaseValue(file, key string) string {
	b, _ := os.ReadFile(file)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// Attach runs a command in the running container, as lxc-attach does,
// and returns its output.
type Attach func(args ...string) (string, error)

// Install installs the .debs of dir (from Dir) into the running container
// whose rootfs is given, with dpkg run through attach, as apt-get install
// would; it returns how many packages it installed.
func Install(rootfs, dir string, attach Attach) (int, error) {
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) == 0 {
		return 0, errors.New(dir + " holds no .deb")
	}
	sort.Strings(debs)
	inside := "/var/cache/ctrfs-packages"
	if err := os.MkdirAll(filepath.Join(rootfs, inside), 0o755); err != nil {
		return 0, err
	}
	for _, deb := range debs {
		if out, err := exec.Command("cp", deb, filepath.Join(rootfs, inside)).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("copy %s: %v: %s", deb, err, out)
		}
	}
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
	if out, err := attach("sh", "-c", script); err != nil {
		return 0, fmt.Errorf("dpkg -i in the container: %v\n%s", err, out)
	}
	return len(debs), nil
}
