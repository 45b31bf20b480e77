package templates

import (
	"context"
	"ctrfs/internal/testenv"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ctrfs/ops/errkind"
	"ctrfs/ops/network"
)

func TestMirrorFromSources(t *testing.T) {
	deb822 := `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`
	if got := mirrorFromDeb822(deb822); got != "http://mirror.example/debian" {
		t.Errorf("deb822: %q", got)
	}
	securityFirst := "Types: deb-src deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://m.example/debian\nSuites: bookworm\n"
	if got := mirrorFromDeb822(securityFirst); got != "http://m.example/debian" {
		t.Errorf("deb822 with security first: %q", got)
	}
	if got := mirrorFromDeb822("Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n"); got != "" {
		t.Errorf("deb822 with sources only: %q", got)
	}
	list := `# deb cdrom:[Debian]/ bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m.example/debian/ bookworm main contrib
`
	if got := mirrorFromList(list); got != "http://m.example/debian" {
		t.Errorf("sources.list: %q", got)
	}
}

// fakeCache is an archiveCache whose build makes a tiny rootfs, counting
// its builds; failAt makes that build fail.
func fakeCache(t *testing.T, dir string, builds *atomic.Int32, fail bool) *archiveCache {
	return &archiveCache{dir: dir, name: "fake", recipe: "recipe-1",
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		build: func(_ context.Context, root string, out io.Writer) (string, error) {
			builds.Add(1)
			time.Sleep(50 * time.Millisecond) // long enough for the others to wait
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("fake\n"), 0o644); err != nil {
				return "", err
			}
			if fail {
				return "", errors.New("mirror unreachable")
			}
			return "http://m.example/debian", nil
		}}
}

// TestArchiveCacheSharedBuild: creates that need the archive at once share
// one build; afterwards it is used as it is, and unpacks.
func TestArchiveCacheSharedBuild(t *testing.T) {
	dir := t.TempDir()
	var builds atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = fakeCache(t, dir, &builds, false).ensure(context.Background())
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := builds.Load(); n != 1 {
		t.Fatalf("%d builds for 6 concurrent creates; want 1", n)
	}
	c := fakeCache(t, dir, &builds, false)
	path, err := c.ensure(context.Background())
	if err != nil || builds.Load() != 1 {
		t.Fatalf("a later ensure: %v, builds %d", err, builds.Load())
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := extractArchive(path, root); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/os-release")); string(b) != "fake\n" {
		t.Errorf("unpacked: %q", b)
	}
	st := c.status()
	if _, err := time.Parse(time.RFC3339, st.Built); err != nil || st.Size == "" || st.Source != "http://m.example/debian" {
		t.Errorf("status: %v", st)
	}

	// Another recipe (a changed package list) builds again.
	c.recipe = "recipe-2"
	if _, err := c.ensure(context.Background()); err != nil || builds.Load() != 2 {
		t.Errorf("new recipe: %v, builds %d", err, builds.Load())
	}
}

// TestArchiveCacheInterrupted: a build that failed, or a daemon killed
// mid-build, leaves no archive that is trusted; the next build removes the
// leftovers.
func TestArchiveCacheInterrupted(t *testing.T) {
	dir := t.TempDir()
	var builds atomic.Int32
	if _, err := fakeCache(t, dir, &builds, true).ensure(context.Background()); err == nil || !errors.Is(err, errkind.ErrFailed) {
		t.Fatalf("failed build: %v", err)
	}
	c := fakeCache(t, dir, &builds, false)
	if c.ready() {
		t.Fatal("a failed build left an archive that is trusted")
	}
	// What a killed build leaves: its scratch directory, and an archive
	// without its info.
	if err := os.MkdirAll(filepath.Join(dir, ".fake.build-123", "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.archive(), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(c.info())
	if c.ready() {
		t.Fatal("an archive without its info is trusted")
	}
	if _, err := c.ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".fake.build-*")); len(left) != 0 {
		t.Errorf("leftovers of builds: %v", left)
	}
	if st := c.status(); st.Built == "not built yet" {
		t.Errorf("status after the build: %v", st)
	}
}

// otherUID owns what another user planted: nobody.
const otherUID = 65534

// TestArchiveCacheUntrusted: an archive or info that another user owns,
// or that others can write, is neither used nor built over: ensure fails
// saying why and what to do, and status says it is not trusted.
func TestArchiveCacheUntrusted(t *testing.T) {
	testenv.NeedRoot(t, "to make files of another user")
	for _, plant := range []func(c *archiveCache){
		func(c *archiveCache) { os.Chown(c.archive(), otherUID, otherUID) },
		func(c *archiveCache) { os.Chmod(c.info(), 0o666) },
	} {
		dir := t.TempDir()
		var builds atomic.Int32
		c := fakeCache(t, dir, &builds, false)
		if _, err := c.ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		plant(c)
		before, _ := os.ReadFile(c.archive())
		_, err := c.ensure(context.Background())
		if !errors.Is(err, errkind.ErrFailed) || !strings.Contains(err.Error(), "cannot be trusted") || !strings.Contains(err.Error(), "chown root:root") {
			t.Errorf("ensure with a planted archive or info: %v", err)
		}
		if after, _ := os.ReadFile(c.archive()); builds.Load() != 1 || string(after) != string(before) {
			t.Errorf("the planted archive was built over (%d builds)", builds.Load())
		}
		if st := c.status(); !strings.HasPrefix(st.Built, "not trusted: ") {
			t.Errorf("status: %v", st)
		}
	}
}

// TestCustomizeDebian: the template's changes and the container's identity
// land in the rootfs.
func TestCustomizeDebian(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"etc/nginx/nginx.conf":            "user www-data;\nworker_processes auto;\n",
		"etc/machine-id":                  "9aa300f92e314147af246dbc9a2216cb\n",
		"etc/hostname":                    "vm\n",
		"etc/ssh/ssh_host_rsa_key":        "secret",
		"etc/ssh/ssh_host_rsa_key.pub":    "public",
		"etc/ssh/sshd_config":             "",
		"var/lib/dbus/machine-id":         "9aa300f92e314147af246dbc9a2216cb\n",
		"etc/systemd/system/sshd.service": "",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := customizeDebian(root, "web1"); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(root, name))
		return string(b)
	}
	if read("etc/hostname") != "web1\n" || !strings.Contains(read("etc/hosts"), "127.0.1.1\tweb1") {
		t.Errorf("hostname %q, hosts %q", read("etc/hostname"), read("etc/hosts"))
	}
	if id := strings.TrimSpace(read("etc/machine-id")); len(id) != 32 || id == "9aa300f92e314147af246dbc9a2216cb" {
		t.Errorf("machine-id %q", id)
	}
	if keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*")); len(keys) != 0 {
		t.Errorf("ssh host keys kept: %v", keys)
	}
	if !strings.Contains(read("etc/nginx/nginx.conf"), "\nuser root;\n") || strings.Contains(read("etc/nginx/nginx.conf"), "www-data") {
		t.Errorf("nginx.conf:\n%s", read("etc/nginx/nginx.conf"))
	}
	for _, f := range []string{"etc/ctrfs-template/README", "etc/systemd/system/service.d/ctrfs-checkpoint.conf",
		"etc/dbus-1/system-local.conf", "etc/systemd/system/ctrfs-counter.service"} {
		if read(f) == "" {
			t.Errorf("%s is missing", f)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "usr/local/sbin/ctrfs-counter")); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("counter service: %v %v", fi, err)
	}
	for link, target := range debianUnits {
		if got, err := os.Readlink(filepath.Join(root, "etc/systemd/system", link)); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want %s", link, got, err, target)
		}
	}
	// Every overlay file the README does not name would be a change
	// without its reason.
	readme := read("etc/ctrfs-template/README")
	fs.WalkDir(debianOverlay, debianOverlayRoot, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(p) != "README" && !strings.Contains(readme, filepath.Base(p)) {
			t.Errorf("etc/ctrfs-template/README does not mention %s", p)
		}
		return nil
	})
}

func TestDebianConfig(t *testing.T) {
	n := network.Network{Bridge: "ctrfsbr0", Subnet: netip.MustParsePrefix("10.0.3.0/24")}
	conf := debianTemplate.Config("d1", "/x/rootfs", n, netip.MustParseAddr("10.0.3.9"), "00:16:3e:01:02:03", time.Now())
	m := parseConfig(t, conf)
	for k, v := range map[string]string{"lxc.signal.halt": "SIGRTMIN+3", "lxc.signal.reboot": "SIGINT",
		"lxc.tty.max": "0", "lxc.net.0.ipv4.address": "10.0.3.9/24"} {
		if got := m[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %v, want %s", k, got, v)
		}
	}
	if !strings.Contains(string(conf), "# ctrfs.template = debian\n") {
		t.Errorf("config does not name its template:\n%s", conf)
	}
}

// TestDebianDropInAttachesNoBPF: the template's drop-in for every service
// resets each setting with which the template's units (journald, logind,
// timedated, networkd, journald@, hostnamed, localed) have systemd attach
// a cgroup BPF program that PID 1 holds and CRIU cannot dump: IP address
// filters, device allow lists and policies, and PrivateDevices=, which
// implies a closed device policy; and PrivateUsers= (Redis's unit), whose
// nested user namespace CRIU cannot dump either. The README says why.
func TestDebianDropInAttachesNoBPF(t *testing.T) {
	b, err := debianOverlay.ReadFile(debianOverlayRoot + "/etc/systemd/system/service.d/ctrfs-checkpoint.conf")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			set[l] = true
		}
	}
	for _, want := range []string{"[Service]", "IPAddressDeny=", "IPAddressAllow=", "DeviceAllow=", "DevicePolicy=auto", "PrivateDevices=no", "PrivateUsers=no"} {
		if !set[want] {
			t.Errorf("ctrfs-checkpoint.conf lacks %q:\n%s", want, b)
		}
	}
	readme, _ := debianOverlay.ReadFile(debianOverlayRoot + "/etc/ctrfs-template/README")
	for _, want := range []string{"DeviceAllow=", "DevicePolicy=auto", "PrivateDevices=no", "PrivateUsers=no", "innodb_use_native_aio = 0"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("etc/ctrfs-template/README does not say why %s", want)
		}
	}
}
