package templates

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ctrfs/ops/network"
)

// parseConfig reads LXC config lines into key -> values (a key may repeat).
func parseConfig(t *testing.T, conf []byte) map[string][]string {
	t.Helper()
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("config line %q has no '='", line)
			continue
		}
		m[strings.TrimSpace(k)] = append(m[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return m
}

func TestTemplateConfig(t *testing.T) {
	n := network.Network{Bridge: "ctrfsbr0", Subnet: netip.MustParsePrefix("10.0.3.0/24")}
	addr := netip.MustParseAddr("10.0.3.57")
	mac := network.MACAddress("dakara", "c1")
	created := time.Date(2026, 11, 25, 5, 10, 0, 0, time.FixedZone("UTC+3", 3*3600))
	conf := templateConfig("c1", "/var/lib/lxc/c1/rootfs", n, addr, mac, created)
	m := parseConfig(t, conf)

	// What a container needs to be checkpointed (docs/containers.md),
	// and the identity the template gives it.
	want := map[string]string{
		"lxc.uts.name":           "c1",
		"lxc.rootfs.path":        "dir:/var/lib/lxc/c1/rootfs",
		"lxc.tty.max":            "0",
		"lxc.console.path":       "none",
		"lxc.net.0.type":         "veth",
		"lxc.net.0.flags":        "up",
		"lxc.net.0.link":         "ctrfsbr0",
		"lxc.net.0.ipv4.address": "10.0.3.57/24",
		"lxc.net.0.ipv4.gateway": "10.0.3.1",
		"lxc.net.0.hwaddr":       mac,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("config has no %s line; want %s = %s", k, k, v)
			continue
		}
		if len(got) != 1 || got[0] != v {
			t.Errorf("config: %s = %q, want exactly %q", k, got, v)
		}
	}
	if bytes.Contains(bytes.ToLower(conf), []byte("apparmor")) {
		t.Errorf("config mentions apparmor; CRIU restore fails with any lxc.apparmor line:\n%s", conf)
	}
	for k := range m {
		if strings.HasPrefix(k, "lxc.network.") || strings.HasPrefix(k, "lxc.tty") && k != "lxc.tty.max" {
			t.Errorf("config has %s, a key LXC 5 does not take here", k)
		}
		if strings.HasPrefix(k, "lxc.net.0.ipv4.") && k != "lxc.net.0.ipv4.address" && k != "lxc.net.0.ipv4.gateway" {
			t.Errorf("config has %s; the address must be static", k)
		}
	}
	if !bytes.HasSuffix(conf, []byte("\n")) {
		t.Error("config does not end in a newline")
	}
	// The creation time travels with the config, in UTC.
	if !bytes.Contains(conf, []byte(CreatedComment+" 2026-11-25T02:10:00Z\n")) {
		t.Errorf("config does not carry the creation time:\n%s", conf)
	}
}

func TestTemplateConfigUsesNetworkPrefix(t *testing.T) {
	n := network.Network{Bridge: "br-test", Subnet: netip.MustParsePrefix("172.20.0.0/16")}
	conf := templateConfig("web", "/x/rootfs", n, netip.MustParseAddr("172.20.9.9"), "00:16:3e:01:02:03", time.Now())
	m := parseConfig(t, conf)
	for k, v := range map[string]string{
		"lxc.net.0.link":         "br-test",
		"lxc.net.0.ipv4.address": "172.20.9.9/16",
		"lxc.net.0.ipv4.gateway": "172.20.0.1",
		"lxc.net.0.hwaddr":       "00:16:3e:01:02:03",
		"lxc.uts.name":           "web",
	} {
		if got := m[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestWriteRootfs(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Fatalf("%s is missing (install busybox-static): the template cannot be built: %v", busyboxPath, err)
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := writeRootfs(dir); err != nil {
		t.Fatalf("writeRootfs: %v", err)
	}

	for _, d := range templateDirs {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s is not a directory: %v", d, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp: mode %v, %v; want drwxrwxrwt", fi.Mode(), err)
	}

	// busybox itself, init as a hard link to it, and its applets as links.
	bb, err := os.Stat(filepath.Join(dir, "bin/busybox"))
	if err != nil || bb.Mode().Perm()&0o111 == 0 {
		t.Fatalf("bin/busybox: %v, %v", bb, err)
	}
	if init, err := os.Stat(filepath.Join(dir, "sbin/init")); err != nil || !os.SameFile(bb, init) {
		t.Errorf("sbin/init is not busybox: %v", err)
	}
	if out, err := exec.Command(filepath.Join(dir, "bin/busybox"), "--list").Output(); err != nil || !bytes.Contains(out, []byte("\nsh\n")) {
		t.Errorf("the rootfs's busybox does not run: %v", err)
	}
	// Every program the template's scripts and inittab call.
	for _, applet := range []string{"sh", "nc", "cat", "mv", "mkdir", "mount", "usleep", "echo", "init"} {
		p := filepath.Join(dir, "bin", applet)
		target, err := os.Readlink(p)
		if err != nil || target != "busybox" {
			t.Errorf("bin/%s -> %q, %v; want a link to busybox", applet, target, err)
			continue
		}
		if fi, err := os.Stat(p); err != nil || !os.SameFile(fi, bb) {
			t.Errorf("bin/%s does not resolve to busybox inside the rootfs: %v", applet, err)
		}
	}

	// The template's files, with executables executable.
	for name, content := range templateFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(data) != content {
			t.Errorf("%s: %q, %v; want the template's content", name, data, err)
			continue
		}
		fi, _ := os.Stat(filepath.Join(dir, name))
		exe := fi.Mode().Perm()&0o111 != 0
		if wantExe := strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "etc/init.d/"); exe != wantExe {
			t.Errorf("%s: mode %v; executable should be %v", name, fi.Mode(), wantExe)
		}
		if strings.HasPrefix(content, "#!") {
			interp := strings.Fields(strings.SplitN(content, "\n", 2)[0][2:])[0]
			if _, err := os.Stat(filepath.Join(dir, interp)); err != nil {
				t.Errorf("%s: interpreter %s is missing from the rootfs", name, interp)
			}
			// busybox's own shell must at least parse it.
			if out, err := exec.Command(busyboxPath, "sh", "-n", filepath.Join(dir, name)).CombinedOutput(); err != nil {
				t.Errorf("%s: sh -n: %v: %s", name, err, out)
			}
		}
	}

	// inittab: rcS at sysinit, and the counter and the 8080 service respawned.
	inittab, err := os.ReadFile(filepath.Join(dir, "etc/inittab"))
	if err != nil {
		t.Fatal(err)
	}
	var sysinit, respawn []string
	for _, line := range strings.Split(strings.TrimSpace(string(inittab)), "\n") {
		f := strings.SplitN(line, ":", 4) // id:runlevels:action:process
		if len(f) != 4 {
			t.Errorf("inittab line %q is not id:runlevels:action:process", line)
			continue
		}
		prog := strings.Fields(f[3])[0]
		if fi, err := os.Stat(filepath.Join(dir, prog)); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("inittab runs %s, which is not an executable in the rootfs: %v", prog, err)
		}
		switch f[2] {
		case "sysinit":
			sysinit = append(sysinit, f[3])
		case "respawn":
			respawn = append(respawn, f[3])
		}
	}
	if len(sysinit) != 1 || sysinit[0] != "/etc/init.d/rcS" {
		t.Errorf("inittab sysinit = %q, want /etc/init.d/rcS", sysinit)
	}
	var counter, service bool
	for _, p := range respawn {
		w := strings.Fields(p)
		switch w[0] {
		case "/bin/counter":
			counter = true
		case "/bin/nc":
			service = strings.Contains(p, "-p 8080") && strings.Contains(p, "-ll") && strings.Contains(p, "-e /bin/showcount")
		}
	}
	if !counter {
		t.Errorf("inittab does not respawn /bin/counter:\n%s", inittab)
	}
	if !service {
		t.Errorf("inittab does not respawn a persistent nc on 8080 running /bin/showcount:\n%s", inittab)
	}
	// The busybox template's rcS ran udhcpc, which blocks and flushes the
	// static address (docs/containers.md, Templates).
	rcS, _ := os.ReadFile(filepath.Join(dir, "etc/init.d/rcS"))
	if bytes.Contains(rcS, []byte("udhcpc")) {
		t.Errorf("rcS runs udhcpc:\n%s", rcS)
	}
}

// The counter and the service do what the template says, run with the
// rootfs's own busybox (no chroot: their absolute paths are redirected).
func TestTemplateScriptsRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := writeRootfs(dir); err != nil {
		t.Fatalf("writeRootfs: %v", err)
	}
	state := filepath.Join(t.TempDir(), "counter")
	sh := filepath.Join(dir, "bin/busybox")
	counter := strings.ReplaceAll(templateFiles["bin/counter"], "/var/lib/counter", state)
	cmd := exec.Command(sh, "sh", "-c", counter)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	// It publishes an increasing count several times a second.
	read := func() string {
		show := strings.ReplaceAll(templateFiles["bin/showcount"], "/var/lib/counter", state)
		out, _ := exec.Command(sh, "sh", "-c", show).Output()
		return strings.TrimSpace(string(out))
	}
	deadline := time.Now().Add(5 * time.Second)
	var first string
	for first == "" && time.Now().Before(deadline) {
		first = read()
		time.Sleep(50 * time.Millisecond)
	}
	if first == "" {
		t.Fatal("counter published nothing within 5s")
	}
	var later string
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if later = read(); later != first && later != "" {
			break
		}
	}
	if later == first || later == "" {
		t.Fatalf("count stayed at %q", first)
	}
	if len(later) < len(first) || len(later) == len(first) && later < first {
		t.Errorf("count went from %q to %q", first, later)
	}
}

// The config that the template writes is the one AllocateAddress reads.
func TestAllocateAddressSeesTemplateConfig(t *testing.T) {
	n := network.Network{Bridge: "ctrfsbr0", Subnet: netip.MustParsePrefix("10.0.3.0/24")}
	lxcpath := t.TempDir()
	a, err := n.AllocateAddress(lxcpath, "dakara", "c1")
	if err != nil {
		t.Fatal(err)
	}
	conf := templateConfig("c1", filepath.Join(lxcpath, "c1", "rootfs"), n, a, network.MACAddress("dakara", "c1"), time.Now())
	if err := os.Mkdir(filepath.Join(lxcpath, "c1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lxcpath, "c1", "config"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := n.AllocateAddress(lxcpath, "dakara", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if b == a {
		t.Errorf("AllocateAddress hands out %s again although c1's config holds it", a)
	}
}
