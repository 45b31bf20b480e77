package criulog

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestCommonBlockerCauses: the common blockers of a dump, as CRIU 4.2.1
// logs them here, get a cause and a fix from `error` (Explain) and
// `check` (Blockers): a host file a task inherited through lxc-attach, a
// nested user namespace (naming the task and its unit), io_uring (MariaDB),
// a big deleted file (a library replaced by an upgrade), two services'
// private mount namespaces (an unpatched CRIU's restore), an inotify
// watch the kernel reported without its file handle, and a task of
// another user where root lacks CAP_SYS_RESOURCE.
func TestCommonBlockerCauses(t *testing.T) {
	noise := "(00.01) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n"
	gone := "999999999" // no such task: the cause still reads
	for _, c := range []struct {
		what, line string
		want       []string
	}{
		{"inherited host file", "(00.31) Error (criu/files-reg.c:1788): Can't lookup mount=27 for fd=7 path=/tmp/held file\n",
			[]string{"holds /tmp/held file (its descriptor 7)", "lxc-attach", "inside the container", "7>&-", "--clear-env"}},
		{"nested user namespace, gone", "(00.12) Error (criu/namespaces.c:180): Can't dump nested user namespace for " + gone + "\n",
			[]string{"task " + gone + " runs in a user namespace of its own", "PrivateUsers=no in a drop-in for its unit"}},
		{"nested user namespace, running", fmt.Sprintf("(00.12) Error (criu/namespaces.c:180): Can't dump nested user namespace for %d\n", os.Getpid()),
			[]string{fmt.Sprintf("task %d (criulog.test", os.Getpid()), "PrivateUsers="}},
		{"io_uring", "(00.61) Error (criu/proc_parse.c:502): Unknown shit 600 (anon_inode:[io_uring])\n(00.61) Error (criu/proc_parse.c:738): Can't open " + gone + "'s mapfile link 7f4dfc27f000: No such device or address\n",
			[]string{"task " + gone + " uses io_uring", "innodb_use_native_aio = 0", "restart its unit"}},
		{"io_uring, no task", "(00.61) Error (criu/proc_parse.c:502): Unknown shit 600 (anon_inode:[io_uring])\n",
			[]string{"a task uses io_uring", "restart its service"}},
		{"ghost file", "(00.21) Error (criu/files-reg.c:1031): Can't dump ghost file /usr/lib/x86_64-linux-gnu/libcrypto.so.3 of 4734976 size, increase limit\n",
			[]string{"holds /usr/lib/x86_64-linux-gnu/libcrypto.so.3 (4734976 bytes)", "package upgrade", "ghost-limit"}},
		{"two services' private mount namespaces", "(00.32)      1: Error (criu/mount-v2.c:1043): mnt-v2: Can't copy sharing from 188[/systemd/propagate/mariadb.service] to 269[/systemd/propagate/redis-server.service]\n",
			[]string{"(mariadb.service and redis-server.service", "criu-patches/0003", "drop-in"}},
		{"a reservation mapped writable", "(00.25)   3337: Error (criu/mem.c:964): Unable to map ANON_VMA: Cannot allocate memory\n",
			[]string{"innodb_buffer_pool_size_max", "patch 0004"}},
		{"a lazy dump's page list", "(00.61) Error (criu/page-pipe.c:204): page-pipe: create_page_pipe: Can't allocate 34364869152 bytes\n",
			[]string{"34364869152 bytes", "patch 0005", "innodb_buffer_pool_size_max", "--post-copy"}},
		{"the page map of a huge reservation", "(01.07) Error (criu/pagemap-cache.c:71): pagemap-cache: pmc_init: Can't allocate 17179607040 bytes: Cannot allocate memory\n",
			[]string{"17179607040 bytes", "PAGEMAP_SCAN", "patch 0012", "CRIU 4.2.1 as released", "make deps", "innodb_buffer_pool_size_max"}},
		{"an unprivileged container's veth", "(00.16)      1: Error (criu/net.c:1591): -95 reported by netlink: Operation not supported\n(00.16)      1: Error (criu/net.c:1737): couldn't restore veth interface eth0 via usernsd\n",
			[]string{"veth eth0 of an unprivileged container", "patch 0007"}},
		{"a bind mount of a symlink", "(00.10)      1: Error (criu/mount-v2.c:324): mnt-v2: Failed to move_mount from /lib to /tmp/.criu.mntns.rMMGx5/mnt-0000000080: Invalid argument\n",
			[]string{"bind mount of /lib", "patch 0011"}},
		{"an unprivileged bind mount over a locked mount", "(00.10)      1: Error (criu/mount-v2.c:319): mnt-v2: Failed to open_tree /usr/lib/x86_64-linux-gnu: Invalid argument\n",
			[]string{"bind mount of /usr/lib/x86_64-linux-gnu", "LXC's rootfs mount point", "patch 0011"}},
		{"an inotify watch without its file handle", "(00.18) Error (criu/proc_parse.c:2290): parse_fdinfo_pid_s: error parsing [inotify wd:17 ino:f60cd sdev:26 mask:2 ignored_mask:0 ] for 8: Invalid argument\n",
			[]string{"inode f60cd on device 26", "being mounted elsewhere", "try again", "patch 0010"}},
		{"an inotify watch without its file handle, patched", "(01.20) Error (criu/proc_parse.c:2331): inotify wd:23 ino:0xf60cd sdev:0x26 has no file handle in fdinfo: its filesystem stayed busy (mounted, unmounted or frozen) or cannot encode one\n",
			[]string{"inode f60cd on device 26", "try again"}},
		{"control messages queued", "(00.31) Error (criu/sk-queue.c:144): skqueue: Control messages in queue, not supported\n",
			[]string{"unix socket", "systemd's notify socket", "try again"}},
		{"another user's task", "(00.05) Error (criu/cr-dump.c:347): Can't get rlimit 0: Operation not permitted\n",
			[]string{"CAP_SYS_RESOURCE", "uid 0"}},
	} {
		log := []byte(noise + c.line + "(00.40) Error (criu/cr-dump.c:2093): Dumping FAILED.\n")
		got := Explain(log)
		b := Blockers(log)
		if len(b) != 1 || b[0] != got {
			t.Errorf("%s: blockers %q, Explain %q", c.what, b, got)
		}
		for _, want := range c.want {
			if !strings.Contains(got, want) {
				t.Errorf("%s: %q lacks %q", c.what, got, want)
			}
		}
		if strings.Contains(got, "{") || strings.Contains(got, "$") {
			t.Errorf("%s: a placeholder is left: %q", c.what, got)
		}
	}
}

// TestUnitOfCgroups: the unit is the innermost service or scope of a
// task's cgroups, on cgroup2 alone or a hybrid host; none outside systemd.
func TestUnitOfCgroups(t *testing.T) {
	for cgroups, want := range map[string]string{
		"0::/lxc.payload.c1/system.slice/redis-server.service\n":                                                                         "redis-server.service",
		"12:cpu,cpuacct:/lxc.payload.c1\n1:name=systemd:/lxc.payload.c1/system.slice/redis-server.service/control\n0::/lxc.payload.c1\n": "redis-server.service",
		"0::/lxc.payload.c1/user.slice/user-0.slice/session-3.scope\n":                                                                   "session-3.scope",
		"0::/lxc.payload.c1\n": "",
		"0::/\n":               "",
		"":                     "",
	} {
		if got := unitOfCgroups(cgroups); got != want {
			t.Errorf("unitOfCgroups(%q) = %q, want %q", cgroups, got, want)
		}
	}
}

func TestExplainCRIU(t *testing.T) {
	log := []byte(`(00.01) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.20) Error (criu/mount.c:724): mnt: FS mnt ./run/credentials/x.service dev 0x40 root / unsupported id 51
(00.21) Error (criu/cr-dump.c:1975): Dumping FAILED.
(00.22) Error (criu/cgroup.c:2055): cg: cgroupd: recv req error: File exists
`)
	got := Explain(log)
	if !strings.Contains(got, "/run/credentials/x.service") || !strings.Contains(got, "enable-fs ramfs") {
		t.Errorf("Explain: %q", got)
	}
	unknown := []byte("(00.01) Error (criu/x.c:1): cg: cgroupd: recv req error: File exists\n(00.02) Error (criu/y.c:2): something new\n")
	if got := Explain(unknown); got != "something new" {
		t.Errorf("Explain of an unknown error: %q", got)
	}
	if b := Blockers(log); len(b) != 1 {
		t.Errorf("blockers: %q", b)
	}
	lxc := []byte("=== LXC ===\nlxc c1 20261127170044.563 ERROR    criu - ../src/lxc/criu.c:exec_criu:402 - No such file or directory - Failed getting freezer path\n")
	if got := Explain(lxc); got != lxcFreezerCause {
		t.Errorf("Explain of LXC's missing freezer: %q", got)
	}
}

// TestSSHPreauthCause: a dump that fails on sshd's sandboxed
// pre-authentication child says so in `error`.
func TestSSHPreauthCause(t *testing.T) {
	log := []byte("(00.183327) Error (compel/src/lib/infect.c:1345): Can't create memfd in victim: Too many open files\n")
	if b := Blockers(log); len(b) != 1 || !strings.Contains(b[0], "OpenSSH's pre-authentication child") {
		t.Errorf("blockers: %q", b)
	}
}

// TestFirstErrorOfAStart: a failed start's LXC log (LXC 5.0.2, the init
// gone from the rootfs) gives the cause, not the spawn failure it ends in.
func TestFirstErrorOfAStart(t *testing.T) {
	log := []byte(`lxc c1 20261206075419.786 WARN     cgfsng - ../src/lxc/cgroups/cgfsng.c:__cgroup_tree_create:748 - File exists - Creating the final cgroup 7(lxc.monitor.c1) failed
lxc c1 20261206075419.830 ERROR    start - ../src/lxc/start.c:start:2197 - No such file or directory - Failed to exec "/sbin/init"
lxc c1 20261206075419.830 ERROR    sync - ../src/lxc/sync.c:sync_wait:34 - An error occurred in another process (expected sequence number 7)
lxc c1 20261206075419.831 ERROR    start - ../src/lxc/start.c:__lxc_start:2107 - Failed to spawn container "c1"
`)
	if got, want := FirstError(log), `No such file or directory - Failed to exec "/sbin/init"`; got != want {
		t.Errorf("FirstError: %q, want %q", got, want)
	}
	if got := FirstError([]byte("lxc c1 1 INFO start - x.c:f:1 - fine\n")); got != "" {
		t.Errorf("FirstError of a log without errors: %q", got)
	}
}

// TestLastErrorSaysSomething: LXC's "criu output:" with CRIU's empty
// output (a failed lazy dump) is not the cause; the line before it is.
func TestLastErrorSaysSomething(t *testing.T) {
	log := []byte(`lxc c1 20261206084700.100 ERROR    criu - ../src/lxc/criu.c:do_dump:1301 - dump failed with 1
lxc c1 20261206084700.101 ERROR    criu - ../src/lxc/criu.c:do_dump:1311 - criu output:
`)
	if got, want := LastError(log), "criu - ../src/lxc/criu.c:do_dump:1301 - dump failed with 1"; got != want {
		t.Errorf("LastError: %q, want %q", got, want)
	}
	if got := Explain(log); got == "" || strings.HasSuffix(got, ":") {
		t.Errorf("Explain: %q", got)
	}
	if got := FirstError([]byte("lxc c1 1 ERROR criu - ../src/lxc/criu.c:do_dump:1311 - criu output:\n")); got != "" {
		t.Errorf("FirstError of an empty criu output: %q", got)
	}
}

// TestActionScriptCause: a failed action script is named, not only the
// exit status CRIU logs first.
func TestActionScriptCause(t *testing.T) {
	log := []byte(`(00.010) Running pre-dump scripts
(00.012) Error (criu/util.c:642): exited, status=3
(00.012) Error (criu/action-scripts.c:119): One of more action scripts failed
`)
	if got := Explain(log); !strings.Contains(got, "action script") {
		t.Errorf("Explain: %q", got)
	}
}
