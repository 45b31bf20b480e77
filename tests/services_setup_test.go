package tests

// The stock Debian services that TestDebianServices installs into one
// debian-template container, set up as a user would (apt's packages with
// their stock units, a service of their own with systemd's sandboxing),
// plus what only a host whose root lacks CAP_SYS_RESOURCE needs.

import (
	"os"
	"os/exec"
	"path/filepath"

	"ctrfs/internal/caps"
)

// servicePackages are installed from the package cache
// (harness_packages_test.go). PostgreSQL is among them where this host
// cannot checkpoint it too, for check's refusal (and for the bed).
var servicePackages = []string{"redis-server", "mariadb-server", "postgresql-15"}

// pyService is a web service of the user's own: a count in memory, one
// more per POST, under systemd's sandboxing as its own unit.
const pyService = `#!/usr/bin/python3
# ctrfs test: one more per POST; every request answers with the count.
import http.server
count = 0
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.reply()
    def do_POST(self):
        global count
        count += 1
        self.reply()
    def reply(self):
        body = b"%d\n" % count
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("", 8081), Handler).serve_forever()
`

// pyUnit sandboxes it as a careful user would; the template's drop-in
// turns off PrivateDevices= and PrivateUsers= (CRIU cannot dump what they
// make), the rest stays.
const pyUnit = `[Unit]
Description=ctrfs test: a Python web service with systemd's sandboxing
[Service]
ExecStart=/usr/bin/python3 /usr/local/sbin/ctrfs-pycount
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
PrivateDevices=yes
PrivateUsers=yes
[Install]
WantedBy=multi-user.target
`

// asRoot are drop-ins for a host whose root lacks CAP_SYS_RESOURCE (this
// VM): CRIU cannot read the limits of a task of another uid there, so the
// services run as root, as the template's own do (docs/containers.md).
var asRoot = map[string]string{
	"etc/systemd/system/redis-server.service.d/ctrfs-test-root.conf": "[Service]\nUser=root\nGroup=root\n",
	"etc/systemd/system/mariadb.service.d/ctrfs-test-root.conf":      "[Service]\nUser=root\nGroup=root\n",
	// mariadbd refuses to run as root unless told.
	"etc/mysql/mariadb.conf.d/99-ctrfs-test-root.cnf": "[mariadbd]\nuser = root\n",
}

// hostCanCheckpointOtherUsers: root here has CAP_SYS_RESOURCE.
func hostCanCheckpointOtherUsers() bool { return caps.CheckpointOtherUsers() }

// setUpServices installs the services into the running container name
// and waits until they all run; it returns the ssh key for root's login.
func (d *Daemon) setUpServices(name string) (sshKey string) {
	d.t.Helper()
	files := map[string]string{
		"usr/local/sbin/ctrfs-pycount":             pyService,
		"etc/systemd/system/ctrfs-pycount.service": pyUnit,
		"etc/cron.d/ctrfs-test":                    "* * * * * root date +\\%s >> /root/cron.out\n",
	}
	if !hostCanCheckpointOtherUsers() {
		for k, v := range asRoot {
			files[k] = v
		}
	}
	sshKey = filepath.Join(d.t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", sshKey).CombinedOutput(); err != nil {
		d.t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(sshKey + ".pub")
	if err != nil {
		d.t.Fatal(err)
	}
	files["root/.ssh/authorized_keys"] = string(pub)
	for rel, content := range files {
		p := d.rootfs(name, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			d.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
	// sshd takes no key that others may read or replace.
	os.Chmod(d.rootfs(name, "root/.ssh"), 0o700)
	os.Chmod(d.rootfs(name, "root/.ssh/authorized_keys"), 0o600)
	d.installPackages(name, servicePackages...)

	// Redis answers the host's client too; as root here it needs its
	// files as root's (its unit leaves it no capability to read others').
	setup := `set -e
sed -i -e 's/^bind .*/bind 0.0.0.0/' -e 's/^protected-mode yes/protected-mode no/' /etc/redis/redis.conf
if grep -q '^User=root' /etc/systemd/system/redis-server.service.d/ctrfs-test-root.conf 2>/dev/null; then
  chown -R root:root /etc/redis /var/lib/redis /var/log/redis
fi
systemctl daemon-reload
systemctl reset-failed
systemctl restart redis-server
systemctl enable --now ctrfs-pycount.service 2>&1
mariadb -e 'CREATE DATABASE ctrfs; CREATE TABLE ctrfs.t (id INT AUTO_INCREMENT PRIMARY KEY)'
`
	if out, err := d.attach(name, "sh", "-c", setup+" </dev/null"); err != nil {
		d.t.Fatalf("setting the services up: %v\n%s", err, out)
	}
	d.systemRunning(name)
	return sshKey
}
