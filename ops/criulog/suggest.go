package criulog

import (
	"bytes"
	"regexp"
)

// restoreFix is what an operator can change to get back saved state whose
// restore failed with a symptom in CRIU's (or LXC's) log: a line for the
// container's `criu` file or its config, then `start` again.
type restoreFix struct {
	symptom *regexp.Regexp
	fix     string
}

// restoreFixes, in the order they are offered. ctrfs itself already tries
// both of CRIU's mount engines (ops/savedstate/restoremode.go), so a mount failure
// gets what neither engine does.
var restoreFixes = []restoreFix{
	{regexp.MustCompile(`One of more action scripts failed|action script|Pre-resume script|post-restore script`),
		"an action script failed: fix it, or remove its `action-script` line from the container's criu file"},
	{regexp.MustCompile(`mnt-v2: Can't copy sharing|Can't bind-mount at \S*/dev/ptmx`),
		"two services with private mount namespaces (systemd's PrivateTmp=, ProtectSystem=, …) defeat both mount engines: neither criu option helps; the state can come back on a host whose CRIU carries the mount-v2 sharing fix (CRIU PR #2695)"},
	{regexp.MustCompile(`(?m)Error \(criu/cgroup\.c|cg: |cgroup\.events|cgroupd`),
		"cgroups: LXC has CRIU restore the container's cgroups whole (--manage-cgroups=full, which a criu file cannot override), so the controllers and limits of the config must exist on this host: remove the config's lxc.cgroup lines for controllers this host lacks"},
	{regexp.MustCompile(`Error \(criu/sk-tcp\.c|tcp: |TCP repair`),
		"TCP connections: write `restore: tcp-close` into the container's criu file; the connections that were open are closed instead of restored, and their clients reconnect"},
	{regexp.MustCompile(`Error \(criu/(files-reg|files)\.c|File \S+ has bad (size|mode)|Can't open file`),
		"files changed since the checkpoint (in the rootfs): put them back as they were, or write `restore: skip-file-rwx-check` into the container's criu file where only their permissions changed"},
	{regexp.MustCompile(`Error \(criu/net\.c|net: |veth`),
		"network: the config's lxc.net lines must be as they were at the checkpoint (type, link, hwaddr, addresses)"},
	{regexp.MustCompile(`apparmor|AppArmor`),
		"AppArmor: remove lxc.apparmor.profile from the config, or load that profile on this host"},
}

// RestoreFixes are the changes that could get back saved state whose
// restore failed with log, each once, in the order of restoreFixes. Only
// CRIU's and LXC's error lines are read, not the noise every run logs.
func RestoreFixes(log []byte) []string {
	var errs [][]byte
	for _, line := range bytes.Split(log, []byte("\n")) {
		if (bytes.Contains(line, []byte("Error (")) || bytes.Contains(line, []byte(" ERROR "))) && !criuNoise.Match(line) {
			errs = append(errs, line)
		}
	}
	errLines := bytes.Join(errs, []byte("\n"))
	var out []string
	for _, f := range restoreFixes {
		if f.symptom.Match(errLines) {
			out = append(out, f.fix)
		}
	}
	return out
}
