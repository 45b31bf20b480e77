//go:build vmtest

package vmtest

// The rest of issue 19's services for TestServicesMore, set up in a
// debian-template container as tests/services_setup_test.go sets them up
// for `make test`, but each as its own user (the bed's root has
// CAP_SYS_RESOURCE, so none needs a User=root drop-in): MariaDB from the
// package cache, the template's nginx, sshd and cron, and the Python web
// service with systemd's sandboxing.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// morePackages come from the package cache; the rest is in the template.
var morePackages = []string{"mariadb-server"}

// moreUnits are the units whose main PIDs must stay the same over every
// operation: restored, not started again.
var moreUnits = []string{"mariadb", "nginx", "ctrfs-pycount", "ssh", "cron"}

// sharedConst reads a string constant of tests/services_setup_test.go
// (package tests, which this package cannot import), so that the Python
// service and its sandboxing stay the ones `make test` runs.
func sharedConst(t *testing.T, name string) string {
	t.Helper()
	const file = "../services_setup_test.go"
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatalf("reading %s for %s: %v", file, name, err)
	}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && n.Name == name && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						return s
					}
				}
			}
		}
	}
	t.Fatalf("%s has no string constant %s", file, name)
	return ""
}

// moreSetup puts the Python service (run as nobody: it needs no file
// of its own), a cron job and root's ssh key in, makes MariaDB's table,
// and has nginx's workers run as www-data again, as Debian ships it (the
// template has them run as root for hosts whose root lacks
// CAP_SYS_RESOURCE: /etc/ctrfs-template/README). %[1]s is the service,
// %[2]s its unit, %[3]s the public key.
const moreSetup = `set -e
sed -i 's/^user root;/user www-data;/' /etc/nginx/nginx.conf
systemctl restart nginx
mkdir -p /root/.ssh && chmod 700 /root/.ssh
cat >> /root/.ssh/authorized_keys <<'CTRFS_EOF'
%[3]s
CTRFS_EOF
chmod 600 /root/.ssh/authorized_keys
cat > /usr/local/sbin/ctrfs-pycount <<'CTRFS_EOF'
%[1]s
CTRFS_EOF
chmod 755 /usr/local/sbin/ctrfs-pycount
cat > /etc/systemd/system/ctrfs-pycount.service <<'CTRFS_EOF'
%[2]s
CTRFS_EOF
mkdir -p /etc/systemd/system/ctrfs-pycount.service.d
printf '[Service]\nUser=nobody\nGroup=nogroup\n' > /etc/systemd/system/ctrfs-pycount.service.d/ctrfs-vmtest-user.conf
echo '* * * * * root date +\%%s >> /root/cron.out' > /etc/cron.d/ctrfs-vmtest
systemctl daemon-reload
systemctl enable --now ctrfs-pycount.service 2>&1
mariadb -e 'CREATE DATABASE ctrfs; CREATE TABLE ctrfs.t (id INT AUTO_INCREMENT PRIMARY KEY)'
`

// moreActive says whether MariaDB, nginx and the Python service run.
const moreActive = "systemctl is-active mariadb nginx ctrfs-pycount | sort -u"

// moreUsers names the users of the services that must not run as root:
// MariaDB's server, nginx's workers, the Python service.
const moreUsers = `echo mariadbd=$(ps -o user= -C mariadbd | sort -u) \
nginx-workers=$(ps -o user= --ppid "$(systemctl show -p MainPID --value nginx)" | sort -u) \
python=$(ps -o user= -p "$(systemctl show -p MainPID --value ctrfs-pycount)")`

// installMore installs and sets the services up in name, checks that
// each runs as its user and that the Python service keeps its sandboxing,
// and returns the private key of root's ssh login.
func (v *VM) installMore(t *testing.T, name string) (key string) {
	t.Helper()
	start := time.Now()
	key = filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	debs := v.installPackages(t, name, morePackages)
	v.inContainer(t, name, fmt.Sprintf(moreSetup, sharedConst(t, "pyService"), sharedConst(t, "pyUnit"), strings.TrimSpace(string(pub))))
	waitFor(t, "MariaDB, nginx and the Python service to be active in "+name, 2*time.Minute, func() bool {
		return v.inContainer(t, name, moreActive) == "active"
	})
	if users, want := v.inContainer(t, name, moreUsers), "mariadbd=mysql nginx-workers=www-data python=nobody"; users != want {
		t.Fatalf("the services run as %q, want their own users (%s)", users, want)
	}
	sandbox := v.inContainer(t, name, "systemctl show ctrfs-pycount -p PrivateTmp -p ProtectSystem -p PrivateUsers")
	for _, want := range []string{"PrivateTmp=yes", "ProtectSystem=strict", "PrivateUsers=no"} {
		if !strings.Contains(sandbox, want) {
			t.Errorf("ctrfs-pycount's sandboxing lacks %s:\n%s", want, sandbox)
		}
	}
	v.systemRunning(t, name)
	t.Logf("FIGURE services-more on %s: %d packages installed and set up in %.0f s", v.Name, len(debs), time.Since(start).Seconds())
	return key
}

// mainPIDs is each of moreUnits' main PID in name.
func (v *VM) mainPIDs(t *testing.T, name string) map[string]string {
	t.Helper()
	out := v.inContainer(t, name, "for u in "+strings.Join(moreUnits, " ")+"; do echo $u $(systemctl show -p MainPID --value $u); done")
	pids := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] != "0" {
			pids[f[0]] = f[1]
		}
	}
	for _, u := range moreUnits {
		if pids[u] == "" {
			t.Fatalf("%s in %s on %s has no main PID (not running):\n%s", u, name, v.Name, out)
		}
	}
	return pids
}

// samePIDs fails the test for each unit whose main PID changed.
func (v *VM) samePIDs(t *testing.T, name string, before map[string]string, when string) {
	t.Helper()
	now := v.mainPIDs(t, name)
	for _, u := range moreUnits {
		if now[u] != before[u] {
			t.Errorf("%s's main PID was %s and is %s %s: started again, not restored", u, before[u], now[u], when)
		}
	}
}

// cronRuns is how many times the cron job has run in name.
func (v *VM) cronRuns(t *testing.T, name string) int {
	t.Helper()
	out := v.inContainer(t, name, "cat /root/cron.out 2>/dev/null | wc -l")
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("counting the cron job's runs in %s: %q", name, out)
	}
	return n
}
