package templates

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"ctrfs/ops/network"
)

// The busybox template (the default): a busybox-static rootfs that needs
// nothing from the host at run time, configured so that CRIU can checkpoint
// it (docs/containers.md): no AppArmor line, no ttys
// or console, and its own rcS instead of the busybox template's blocking udhcpc.
//
// It runs a service that carries state in memory: `counter` keeps a count in
// a shell variable (not on disk, so a cold restart starts again from 1 while
// a restore continues), publishes it to /var/lib/counter/count several times a
// second, and nc answers every connection on port 8080 with that count.

const busyboxPath = "/bin/busybox"

var templateFiles = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
	"etc/group":  "root:x:0:root\n",
	"etc/fstab":  "",
	"etc/inittab": `::sysinit:/etc/init.d/rcS
::respawn:/bin/counter
::respawn:/bin/nc -ll -p 8080 -e /bin/showcount
`,
	"etc/init.d/rcS": `#!/bin/sh
/bin/mount -a
mkdir -p /var/lib/counter
`,
	"bin/counter": `#!/bin/sh
# The count lives in this shell's memory; the file only publishes it.
n=0
mkdir -p /var/lib/counter
while :; do
  n=$((n+1))
  echo $n > /var/lib/counter/count.new
  mv /var/lib/counter/count.new /var/lib/counter/count
  usleep 200000
done
`,
	"bin/showcount": "#!/bin/sh\ncat /var/lib/counter/count\n",
}

var templateDirs = []string{"bin", "sbin", "etc/init.d", "dev", "proc", "sys", "tmp", "run",
	"var/lib/counter", "root", "usr/bin", "usr/sbin", "lib"}

// writeRootfs builds the template's rootfs in dir.
func writeRootfs(dir string) error {
	for _, d := range templateDirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// os.FileMode has its own sticky bit: a plain 0o1777 would drop it.
	if err := os.Chmod(filepath.Join(dir, "tmp"), os.ModeSticky|0o777); err != nil {
		return err
	}
	bb := filepath.Join(dir, "bin/busybox")
	data, err := os.ReadFile(busyboxPath)
	if err == nil {
		err = os.WriteFile(bb, data, 0o755)
	}
	if err != nil {
		return fmt.Errorf("copy busybox (install busybox-static): %w", err)
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	if err := os.Link(bb, filepath.Join(dir, "sbin/init")); err != nil {
		return err
	}
	for name, content := range templateFiles {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "etc/init.d/") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			return err
		}
	}
	return nil
}

// templateConfig is the LXC config of a new container; other templates
// change a few keys of it (see Template.Config).
func templateConfig(name, rootfs string, net network.Network, addr netip.Addr, mac string, created time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Made by ctrfs from a template (ctrfs.template, at the end).\n")
	fmt.Fprintf(&b, "%s %s\n", CreatedComment, created.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "lxc.uts.name = %s\n", name)
	fmt.Fprintf(&b, "lxc.rootfs.path = dir:%s\n", rootfs)
	b.WriteString(`lxc.signal.halt = SIGUSR1
lxc.signal.reboot = SIGTERM
lxc.autodev = 1
lxc.tty.max = 0
lxc.pty.max = 1
lxc.console.path = none
lxc.cap.drop = sys_module mac_admin mac_override sys_time
lxc.mount.auto = cgroup:mixed proc:mixed sys:ro
lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0
lxc.net.0.type = veth
lxc.net.0.flags = up
`)
	fmt.Fprintf(&b, "lxc.net.0.link = %s\n", net.Bridge)
	fmt.Fprintf(&b, "lxc.net.0.ipv4.address = %s/%d\n", addr, net.Subnet.Bits())
	fmt.Fprintf(&b, "lxc.net.0.ipv4.gateway = %s\n", net.Gateway())
	fmt.Fprintf(&b, "lxc.net.0.hwaddr = %s\n", mac)
	return b.Bytes()
}

// CreatedComment marks the creation time in the config itself, so that it
// travels with the container.
const CreatedComment = "# ctrfs.created ="
