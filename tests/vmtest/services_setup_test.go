//go:build vmtest

package vmtest

// Stock PostgreSQL 15 and Redis in a debian-template container on the
// bed, installed as a user would (their Debian packages, stock units, each
// running as its own user) but from this host's package cache: the guests
// reach no mirror. tests/harness_packages_test.go fills the cache, one
// directory of .debs per package set and template dpkg status, named
// SUITE-KEY; the bed's template is the archive this host's tests use
// (install.sh copies it), so its dpkg status names the same directory.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// packageCache is tests/harness_packages_test.go's.
const packageCache = "/var/cache/ctrfs/packages"

// bedServices are the packages this test installs; the cache directory
// may hold more (tests/ add MariaDB), of which only what these need is
// copied in.
var bedServices = []string{"postgresql-15", "redis-server"}

// rootfs is a path in name's root filesystem in the VM.
func rootfs(name, rel string) string { return "/var/lib/lxc/" + name + "/rootfs/" + rel }

// packageDir finds the cache directory for name's dpkg status that holds
// pkgs, keyed as harness_packages_test.go keys it: the first 16 hex
// digits of SHA-256(status, "SUITE PKG PKG..."), the packages in the order
// of its complete file.
func (v *VM) packageDir(t *testing.T, name string, pkgs []string) string {
	t.Helper()
	// The file's bytes as they are (Run trims its output).
	status, err := exec.Command("ssh", v.sshArgs("cat "+rootfs(name, "var/lib/dpkg/status"))...).Output()
	if err != nil {
		t.Fatalf("%s: %s's dpkg status: %v", v.Name, name, err)
	}
	suite, _ := v.Run(". " + rootfs(name, "etc/os-release") + " && echo $VERSION_CODENAME")
	completes, _ := filepath.Glob(filepath.Join(packageCache, suite+"-*", "complete"))
	for _, c := range completes {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		set := strings.Fields(string(b))
		h := sha256.New()
		h.Write(status)
		io.WriteString(h, suite+" "+strings.Join(set, " "))
		dir := filepath.Dir(c)
		if filepath.Base(dir) == suite+"-"+hex.EncodeToString(h.Sum(nil))[:16] && holdsAll(set, pkgs) {
			return dir
		}
	}
	t.Fatalf("%s has no package set for the debian template's dpkg status (suite %q) holding %v: "+
		"`CTRFS_TEST_LANE=N go test ./tests/ -run TestDebianServices` on this host fills it", packageCache, suite, pkgs)
	return ""
}

func holdsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// debsFor picks from dir the .debs that pkgs need: theirs and, through
// Depends and Pre-Depends, those of every package the directory holds
// that they need. apt resolved the set against the template, so a
// dependency that is not in it is there already; of alternatives, apt
// downloaded the one it picked.
func debsFor(t *testing.T, dir string, pkgs []string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	deb := map[string]string{}       // package -> file
	needs := map[string][][]string{} // package -> its dependencies, each a list of alternatives
	for _, f := range files {
		out, err := exec.Command("dpkg-deb", "-f", f, "Package", "Depends", "Pre-Depends").Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", f, err)
		}
		var pkg string
		var groups [][]string
		for _, line := range strings.Split(string(out), "\n") {
			key, val, _ := strings.Cut(line, ": ")
			if key == "Package" {
				pkg = val
				continue
			}
			for _, group := range strings.Split(val, ",") {
				var alts []string
				for _, alt := range strings.Split(group, "|") {
					if f := strings.Fields(alt); len(f) > 0 {
						alts = append(alts, strings.TrimSuffix(f[0], ":any"))
					}
				}
				if len(alts) > 0 {
					groups = append(groups, alts)
				}
			}
		}
		deb[pkg], needs[pkg] = f, groups
	}
	picked := map[string]bool{}
	var visit func(string)
	visit = func(p string) {
		if picked[p] || deb[p] == "" {
			return
		}
		picked[p] = true
		for _, alts := range needs[p] {
			for _, a := range alts {
				if deb[a] != "" {
					visit(a)
					break
				}
			}
		}
	}
	for _, p := range pkgs {
		if deb[p] == "" {
			t.Fatalf("%s holds no .deb of %s", dir, p)
		}
		visit(p)
	}
	var out []string
	for p := range picked {
		out = append(out, deb[p])
	}
	sort.Strings(out)
	return out
}

// copyIn copies files (of one local directory) into the VM's directory
// remote, through tar over ssh.
func (v *VM) copyIn(t *testing.T, files []string, remote string) {
	t.Helper()
	args := []string{"-c", "-C", filepath.Dir(files[0])}
	for _, f := range files {
		args = append(args, filepath.Base(f))
	}
	tar := exec.Command("tar", args...)
	ssh := exec.Command("ssh", v.sshArgs("mkdir -p "+remote+" && tar -x -C "+remote)...)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ssh.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := ssh.CombinedOutput()
	if werr := tar.Wait(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		t.Fatalf("copying %d files into %s:%s: %v: %s", len(files), v.Name, remote, err, out)
	}
}

// inContainer runs script with sh in name, its stdin /dev/null: written
// to a file in the rootfs first, so that nothing the script starts holds
// a descriptor of the ssh session (a pipe to outside fails a dump).
func (v *VM) inContainer(t *testing.T, name, script string) string {
	t.Helper()
	f := "/root/ctrfs-vmtest.sh"
	write := exec.Command("ssh", v.sshArgs("cat > "+rootfs(name, f))...)
	write.Stdin = strings.NewReader(script)
	if out, err := write.CombinedOutput(); err != nil {
		t.Fatalf("%s: writing %s into %s: %v: %s", v.Name, f, name, err, out)
	}
	out, err := v.Run(fmt.Sprintf("lxc-attach -P /var/lib/lxc -n %s -- sh %s </dev/null 2>&1; s=$?; rm -f %s; exit $s", name, f, rootfs(name, f)))
	if err != nil {
		t.Fatalf("%s: in %s:\n%s\n%v: %s", v.Name, name, script, err, out)
	}
	return out
}

// installScript installs the .debs in /var/cache/ctrfs-packages with dpkg
// as apt would, then removes them. A package whose pre-dependency dpkg had
// not configured when it reached it is left out of the first pass (all of
// them: some upgrade an installed package); the next passes take what is
// still not installed.
const installScript = `cd /var/cache/ctrfs-packages && export DEBIAN_FRONTEND=noninteractive
missing() { for f in *.deb; do
  dpkg-query -W -f '${Status}\n' "$(dpkg-deb -f "$f" Package)" 2>/dev/null | grep -q 'ok installed$' || echo "$f"
done; }
todo=$(echo *.deb)
for pass in 1 2 3; do
  dpkg -i --force-unsafe-io $todo >>/root/dpkg.log 2>&1 && break
  todo=$(missing); [ -n "$todo" ] || break
done
todo=$(missing); cd /; rm -rf /var/cache/ctrfs-packages
[ -z "$todo" ] || { tail -n 40 /root/dpkg.log; echo "not installed: $todo"; exit 1; }
`

// serviceSetup lets this host's clients in: Redis on every address
// without protected mode, PostgreSQL on every address trusting this
// host's address on the segment, and the table the client fills.
const serviceSetup = `set -e
sed -i -e 's/^bind .*/bind 0.0.0.0/' -e 's/^protected-mode yes/protected-mode no/' /etc/redis/redis.conf
echo "listen_addresses = '*'" > /etc/postgresql/15/main/conf.d/ctrfs-vmtest.conf
echo 'host all all 10.214.0.2/32 trust' >> /etc/postgresql/15/main/pg_hba.conf
systemctl restart redis-server postgresql@15-main
runuser -u postgres -- psql -q -c 'CREATE TABLE acked (id serial PRIMARY KEY)'
`

// installServices installs and sets up bedServices in name, and checks
// that each runs as its own user.
func (v *VM) installServices(t *testing.T, name string) {
	t.Helper()
	start := time.Now()
	debs := v.installPackages(t, name, bedServices)
	v.inContainer(t, name, serviceSetup)
	users := v.inContainer(t, name, "echo $(ps -o user= -C redis-server | sort -u) $(ps -o user= -C postgres | sort -u)")
	if users != "redis postgres" {
		t.Fatalf("redis-server and postgres run as %q, want their own users (redis postgres)", users)
	}
	v.systemRunning(t, name)
	t.Logf("FIGURE services on %s: %d packages installed and set up in %.0f s", v.Name, len(debs), time.Since(start).Seconds())
}

// installPackages installs pkgs in name from the package cache, with what
// they need that the template lacks; it returns the .debs it installed.
func (v *VM) installPackages(t *testing.T, name string, pkgs []string) []string {
	t.Helper()
	debs := debsFor(t, v.packageDir(t, name, pkgs), pkgs)
	v.copyIn(t, debs, rootfs(name, "var/cache/ctrfs-packages"))
	v.inContainer(t, name, installScript)
	return debs
}
