// Package criulog reads what CRIU and LXC log: why a run failed, in an
// operator's words and with the fix (the causes seen with real containers,
// causes.go, naming the task and its systemd unit, taskunit.go), and the
// `log` file of an operation, CRIU's log then LXC's (log.go). It knows
// nothing of how CRIU and LXC are run: ops and the helper hand it their
// logs.
package criulog

import (
	"bytes"
	"regexp"
	"strings"
)

// knownCause is a CRIU (or LXC) failure seen with real containers: a
// pattern of its log, and what it means and how to fix it in an
// operator's words. $1… in the text are the pattern's groups. A cause
// about one task whose host PID the pattern holds (a group named task)
// names it: {task} in the text becomes its PID, command and systemd unit,
// {unit} the unit (taskunit.go). A BPF program's file (a group named
// bpffd) is explained whole from its type and cgroup ({bpf}, bpfprog.go).
type knownCause struct {
	symptom *regexp.Regexp
	text    string
}

// knownCauses, as found in CRIU's logs (Debian systemd containers, LXC's
// busybox template, hosts without CAP_SYS_RESOURCE). The first that
// matches a log explains a failure; `check` lists every one that matches.
var knownCauses = []knownCause{
	{regexp.MustCompile(`Can't dump nested uts namespace`),
		"a service runs in a UTS namespace of its own (systemd's ProtectHostname=yes, as systemd-logind has): CRIU cannot dump a nested UTS namespace; set ProtectHostname=no in a drop-in for it"},
	{regexp.MustCompile(`FS mnt \.?(\S+) dev \S+ root \S+ unsupported`),
		"the mount at $1 has a filesystem that CRIU does not dump (a ramfs, as systemd's LoadCredential= makes): write `enable-fs ramfs` (or the filesystem's type) into the container's criu file, or set LoadCredential= empty in a drop-in"},
	{regexp.MustCompile(`Can't dump file (?P<bpffd>\d+) of that type \[\d+\] \(anon anon_inode:bpf-prog\)`), "{bpf}"},
	{regexp.MustCompile(`Can't get rlimit \d+: Operation not permitted`), RlimitCause},
	{regexp.MustCompile(`Can't bind-mount at \S*/dev/ptmx: Not a directory`),
		"a service has a private mount namespace (PrivateTmp=, ProtectSystem=, PrivateDevices=, …), which CRIU's mntns-compat-mode cannot restore: the mount-v2 restore failed too (see its error); turn mount sandboxing off in drop-ins"},
	{regexp.MustCompile(`Can't copy sharing from \d+\[/systemd/propagate/([^\]]+)\] to \d+\[/systemd/propagate/([^\]]+)\]`),
		"two services have private mount namespaces ($1 and $2: systemd's PrivateTmp=, ProtectSystem=, ProtectHome=, …), and this CRIU cannot restore their /run/systemd/incoming mounts: install the CRIU that ctrfs builds (make deps: it carries the fix, scripts/criu-patches/0003), or turn mount sandboxing off in a drop-in for one of them"},
	{regexp.MustCompile(`Unable to map ANON_VMA: Cannot allocate memory`),
		"CRIU could not map a task's memory (Cannot allocate memory): either this host lacks the memory, or a task reserved far more address space than it uses (MariaDB reserves innodb_buffer_pool_size_max, 8 TiB by default), which a CRIU without ctrfs's patch 0004 maps as committed memory: install the CRIU that ctrfs builds (make deps), or set innodb_buffer_pool_size_max (under [mariadbd]) to what the pool may grow to"},
	{regexp.MustCompile(`create_page_pipe: Can't allocate (\d+) bytes`),
		"CRIU could not allocate its list of a lazy dump's pages ($1 bytes, one entry for each page of address space): a task reserved far more address space than it uses (MariaDB reserves innodb_buffer_pool_size_max, 8 TiB by default): install the CRIU that ctrfs builds (make deps: patch 0005), or set innodb_buffer_pool_size_max (under [mariadbd]) to what the pool may grow to, or move it without --post-copy"},
	{regexp.MustCompile(`pmc_init: Can't allocate (\d+) bytes`),
		"CRIU could not allocate the page map of a task's largest mapping ($1 bytes, 8 for each page of it): on kernels before 6.7 (no PAGEMAP_SCAN: Debian 12's 6.1) a CRIU without ctrfs's patch 0012 (CRIU 4.2.1 as released, as every distribution's package is) reads a mapping's page map whole, and a task reserved far more address space than this host has memory (MariaDB reserves innodb_buffer_pool_size_max, 8 TiB by default: the debian template caps it at 1 GiB); install the CRIU that ctrfs builds (make deps: patch 0012 reads it 1 GiB of address space at a time), or set innodb_buffer_pool_size_max (under [mariadbd]) to what the pool may grow to, or run a kernel with PAGEMAP_SCAN (6.7 or later, bookworm-backports)"},
	{regexp.MustCompile(`couldn't restore veth interface (\S+) via usernsd`),
		"this CRIU cannot restore the veth $1 of an unprivileged container: its usernsd asks for it from the host's network namespace, where the container's interface index is another device's (-95, EOPNOTSUPP): install a CRIU with ctrfs's patch 0007 (usernsd makes the veth from the task's network namespace)"},
	{regexp.MustCompile(`mnt-v2: Failed to move_mount from (\S+) to`),
		"this CRIU's mount-v2 cannot restore the bind mount of $1 (a symlink: ctrfs then tries mntns-compat-mode); install the CRIU that ctrfs builds (make deps: patch 0011)"},
	{regexp.MustCompile(`mnt-v2: Failed to open_tree (\S+): Invalid argument`),
		"this CRIU cannot restore an unprivileged container's bind mount of $1: the host has a mount beneath it (LXC's rootfs mount point, under /lib and /usr/lib), which the kernel will not copy inside a user namespace; install the CRIU that ctrfs builds (make deps: patch 0011)"},
	{regexp.MustCompile(`fsnotify: Unable to open \S*cgroup\.events`),
		"a task (systemd) watches an empty cgroup that CRIU does not recreate, and the saved state has no record of the cgroups (ctrfs-cgroups) to make it from: stop the container cleanly and checkpoint it again"},
	{regexp.MustCompile(`error parsing \[inotify wd:[0-9a-f]+ ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:[0-9a-f]+ ignored_mask:[0-9a-f]+ \]`), inotifyNoHandleCause},
	{regexp.MustCompile(`inotify wd:\d+ ino:0x([0-9a-f]+) sdev:0x([0-9a-f]+) has no file handle in fdinfo`), inotifyNoHandleCause},
	{regexp.MustCompile(`skqueue: Control messages in queue, not supported`),
		"a unix socket holds messages with credentials or descriptors that its reader has not taken yet, which CRIU cannot dump (systemd's notify socket does for a moment after a unit starts; ctrfs tried again for a while): try again; if it stays so, a task is not reading a socket that others send descriptors or credentials to"},
	{regexp.MustCompile(`tty: Unable to find a master`),
		"a task holds a terminal of the host (a getty on LXC's ttys or console): set lxc.tty.max = 0 and lxc.console.path = none in the config"},
	{regexp.MustCompile(`apparmor LSM specified but apparmor not supported`),
		"the config names an AppArmor profile and this kernel has no AppArmor: remove lxc.apparmor.profile from the config"},
	{regexp.MustCompile(`Unseizable non-zombie (\d+) found, state (\S+)`),
		"task $1 cannot be frozen (state $2): it is traced by a debugger (strace, gdb) or stuck in the kernel; detach the debugger, or try again"},
	{regexp.MustCompile(`Can't create memfd in victim: Too many open files`),
		"a task has no file descriptor left under its RLIMIT_NOFILE, so CRIU cannot inject its parasite into it: most often OpenSSH's pre-authentication child (an ssh login under way, which sshd's sandbox limits to the descriptors it has); try again once the login has finished or timed out (sshd's LoginGraceTime)"},
	{regexp.MustCompile(`Failed getting freezer path`), lxcFreezerCause},
	{regexp.MustCompile(`(?m)Can't lookup mount=\d+ for fd=(\d+) path=(.+?)\s*$`), inheritedFileCause},
	{regexp.MustCompile(`Can't dump nested user namespace for (?P<task>\d+)`),
		"{task} runs in a user namespace of its own (systemd's PrivateUsers=, or unshare -U), which CRIU cannot dump: set PrivateUsers=no in a drop-in for {unit} (systemctl edit), or end that task"},
	{regexp.MustCompile(`Unknown shit \d+ \(anon_inode:\[io_uring\]\)(?:[^\n]*\n[^\n]*Can't open (?P<task>\d+)'s mapfile)?`),
		"{task} uses io_uring, which CRIU cannot dump: for MariaDB set innodb_use_native_aio = 0 under [mariadbd] (the debian template's /etc/mysql/mariadb.conf.d/90-ctrfs-checkpoint.cnf does), for another program its own setting for io_uring, then restart {unit}"},
	{regexp.MustCompile(`Can't dump ghost file (\S+) of (\d+) size, increase limit`),
		"a task holds $1 ($2 bytes), a file deleted since it opened or mapped it (most often a library that a package upgrade replaced), and CRIU copies such files only up to its ghost-limit: restart the services that hold it (lsof +L1, or needrestart, lists them), or write `ghost-limit 64M` (at least its size) into the container's criu file"},
	{regexp.MustCompile(`One of more action scripts failed`),
		"an action script (action-script in the container's criu file, or in CRIU's own config) failed, which stops CRIU: its exit status and output are in `log`; fix or remove the script"},
	{regexp.MustCompile(`session leader of \S+ is outside of its pid namespace`),
		"a task belongs to a session that began outside the container (a process left by lxc-attach): start it with setsid, or from the container's own init"},
}

// lxcFreezerCause: LXC 5.0.2's restore never looks for cgroup2's freezer
// (upstream LXC's commit f30cbb86f, "restore cgroup limits and freezer on
// restore", added it), so on a cgroup2-only host the monitor of a
// container that LXC restored knows no freezer cgroup, and every dump of
// it by LXC fails before CRIU runs. ctrfs's checkpoint then runs CRIU
// itself (ops/lxchelper/criudump.go), which replaces LXC's log with its
// own line, so this shows only for a log of LXC's own dump made otherwise.
const lxcFreezerCause = "this host has cgroup2 alone and the container was restored from a checkpoint, which LXC before its commit f30cbb86f (Debian 12's 5.0.2 among them) cannot checkpoint: ctrfs's stop-stateful, snapshot --stateful, move and check dump such a container with CRIU directly; with LXC's own tools, stop the container and start it again first (its processes' state since the restore is lost), or use an LXC with that fix"

// inheritedFileCause: lxc-attach passes every descriptor of the shell
// that runs it into the container, and a task started so keeps them.
const inheritedFileCause = "a task of the container holds $2 (its descriptor $1), a file of the host outside the container's mounts: it inherited it from the shell that ran lxc-attach (or opened it through a bind mount since removed); start that task from inside the container (its init or a service), or close the descriptor before lxc-attach ($1>&- on its command line) and give the task the container's own stdin and stdout: lxc-attach -n NAME --clear-env -- sh -c 'exec COMMAND </dev/null >/dev/null 2>&1'"

// inotifyNoHandleCause: the kernel (since 6.18's "fs/notify: call
// exportfs_encode_fid with s_umount", and its stable backports) leaves an
// inotify watch's file handle out of fdinfo while the watched file's
// filesystem is being mounted or unmounted; for cgroup2 that is any
// container's start. Stock CRIU fails the dump on such a line; ctrfs's
// (scripts/criu-patches/0010) reads fdinfo again for a second first.
const inotifyNoHandleCause = "a task watches with inotify a file (inode $1 on device $2; 26 is cgroup2, as systemd watches its units' cgroup.events) whose file handle the kernel left out of its report because the filesystem was being mounted elsewhere at that moment (a container's start mounts cgroup2): try again; the CRIU that ctrfs builds (make deps: patch 0010) reads the report again until the handle is in it"

// RlimitCause: see also hostBlockers (ops/savedstate/check.go), which names the tasks.
const RlimitCause = "a task runs as a user other than root and this host's root lacks CAP_SYS_RESOURCE, so CRIU may not read its limits: run every long-running task as uid 0, or run ctrfs with CAP_SYS_RESOURCE"

// criuNoise are error lines that CRIU logs on every run here, or after
// the real error, and that never explain a failure.
var criuNoise = regexp.MustCompile(`RLIMIT_NOFILE|cgroupd: recv req error|Restoring FAILED|Dumping FAILED|Dump core \(pid: \d+\) failed|Address already assigned|address already assigned`)

// Blockers are the known causes found in a log, each once, in table order.
func Blockers(log []byte) []string {
	var out []string
	for _, k := range knownCauses {
		if m := k.symptom.FindSubmatchIndex(log); m != nil {
			out = append(out, k.explain(log, m))
		}
	}
	return out
}

// explain is the cause's text for a match m of its symptom in src.
func (k knownCause) explain(src []byte, m []int) string {
	text := string(k.symptom.Expand(nil, []byte(k.text), src, m))
	if i := k.symptom.SubexpIndex("bpffd"); i > 0 && m[2*i] >= 0 {
		text = strings.ReplaceAll(text, "{bpf}", explainBPFProg(src, m[0], string(src[m[2*i]:m[2*i+1]])))
	}
	if i := k.symptom.SubexpIndex("task"); i > 0 {
		// A task the log does not name (an optional group) is "a task".
		task, unit := "a task", "its service"
		if m[2*i] >= 0 {
			task, unit = describeTask(string(src[m[2*i]:m[2*i+1]]))
		}
		text = strings.NewReplacer("{task}", task, "{unit}", unit).Replace(text)
	}
	return text
}

// Explain says why a CRIU run failed: the known cause of the first
// error line that has one, else the first error line that is not noise.
func Explain(log []byte) string {
	var first string
	// Line by line, with each line's offset: a cause may read the log
	// before its line (explainBPFProg: the task whose files were dumped).
	for start, end := 0, 0; start < len(log); start = end + 1 {
		if end = bytes.IndexByte(log[start:], '\n'); end < 0 {
			end = len(log)
		} else {
			end += start
		}
		line := string(log[start:end])
		i := strings.Index(line, "Error (")
		if i < 0 {
			if !strings.Contains(line, " ERROR ") {
				continue
			}
			i = strings.Index(line, " ERROR ")
		}
		for _, k := range knownCauses {
			if m := k.symptom.FindStringSubmatchIndex(line); m != nil {
				// A symptom may go on over the next lines (the task
				// that io_uring's line lacks): matched again from here.
				if whole := k.symptom.FindSubmatchIndex(log[start:]); whole != nil && whole[0] == m[0] {
					m = whole
				}
				for j := range m {
					if m[j] >= 0 {
						m[j] += start
					}
				}
				return k.explain(log, m)
			}
		}
		if first == "" && !criuNoise.MatchString(line) && strings.Contains(line, "Error (") {
			msg := line[i:]
			if j := strings.Index(msg, "): "); j >= 0 {
				msg = msg[j+3:]
			}
			first = strings.TrimSpace(msg)
		}
	}
	if first == "" {
		return LastError(log)
	}
	return first
}
