package ops

import (
	"fmt"
	"path"
	"strings"
)

// reportMembers says what each file of a bug report holds, for its README
// member: an operator reads it before sending the report anywhere, and
// must learn there that the config and logs may name secrets.
var reportMembers = map[string]string{
	"command":             "the container's last operation, how long it took, and its error",
	"log":                 "the CRIU or LXC log of that operation: it names the container's processes, open files, sockets and mounts",
	"info":                "the container's `info` file",
	"lxc-config":          "the container's LXC config as LXC expanded it: its environment (lxc.environment), mounts, hooks and addresses, which may hold passwords or keys",
	"container-mountinfo": "the container's mounts (its init's /proc/PID/mountinfo), while it runs",
	"uname":               "the host's kernel (uname -a)",
	"host-mountinfo":      "the host's mounts, as the daemon sees them",
	"dmesg":               fmt.Sprintf("the last %d lines of the host's kernel log", dmesgLines),
	"daemon.log":          "the daemon's recent log lines, about every container of the host, not this one alone",
	"bridge":              "the containers' bridge: ip -d link show, ip addr show, bridge link",
	"versions":            "the versions of ctrfs, CRIU, LXC and the kernel",
	"error":               "why the target's own report could not be had",
}

// reportReadme is the README member of a bug report: what it holds, file
// by file, in the order of the archive.
func reportReadme(files []ReportFile) []byte {
	var b strings.Builder
	b.WriteString(`ctrfs bug report: what a CRIU or LXC bug report about a container needs.

It holds no memory image, no file of the store and no key, but lxc-config
and the logs may name secrets (passwords in the environment, paths, host
names). Every file is root's alone (0600, directories 0700) once root
unpacks it with tar; read them before you send the report anywhere, and
remove or edit what must not leave this host.

`)
	for _, f := range files {
		dir, base := path.Split(f.Name)
		what, ok := reportMembers[base]
		if !ok {
			what = "(not described)"
		}
		if host, ok := strings.CutPrefix(strings.TrimSuffix(dir, "/"), "peer-"); ok {
			what = "from " + host + ", the target of the failed move: " + what
		}
		fmt.Fprintf(&b, "%s\n    %s\n", f.Name, what)
	}
	return []byte(b.String())
}
