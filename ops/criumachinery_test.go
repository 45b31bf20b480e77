package ops

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCriuOptions(t *testing.T) {
	dump, restore, err := parseCriuOptions([]byte("# comment\nenable-fs ramfs\n\ndump: ghost-limit 1M  # big files\nrestore: tcp-close\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"enable-fs ramfs", "ghost-limit 1M"}; !reflect.DeepEqual(dump, want) {
		t.Errorf("dump %q, want %q", dump, want)
	}
	if want := []string{"enable-fs ramfs", "tcp-close"}; !reflect.DeepEqual(restore, want) {
		t.Errorf("restore %q, want %q", restore, want)
	}
	for _, bad := range []string{"--tcp-close\n", "dump:\n"} {
		if _, _, err := parseCriuOptions([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestExplainCRIU(t *testing.T) {
	log := []byte(`(00.01) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.20) Error (criu/mount.c:724): mnt: FS mnt ./run/credentials/x.service dev 0x40 root / unsupported id 51
(00.21) Error (criu/cr-dump.c:1975): Dumping FAILED.
(00.22) Error (criu/cgroup.c:2055): cg: cgroupd: recv req error: File exists
`)
	got := explainCRIU(log)
	if !strings.Contains(got, "/run/credentials/x.service") || !strings.Contains(got, "enable-fs ramfs") {
		t.Errorf("explainCRIU: %q", got)
	}
	unknown := []byte("(00.01) Error (criu/x.c:1): cg: cgroupd: recv req error: File exists\n(00.02) Error (criu/y.c:2): something new\n")
	if got := explainCRIU(unknown); got != "something new" {
		t.Errorf("explainCRIU of an unknown error: %q", got)
	}
	if b := blockers(log); len(b) != 1 {
		t.Errorf("blockers: %q", b)
	}
	lxc := []byte("=== LXC ===\nlxc c1 20261127170044.563 ERROR    criu - ../src/lxc/criu.c:exec_criu:402 - No such file or directory - Failed getting freezer path\n")
	if got := explainCRIU(lxc); got != lxcFreezerCause {
		t.Errorf("explainCRIU of LXC's missing freezer: %q", got)
	}
}

func TestRestoredCgroupBases(t *testing.T) {
	mounts := []cgroupMount{
		{id: "cpu,cpuacct", controllers: []string{"cpu", "cpuacct"}, dir: "/sys/fs/cgroup/cpu,cpuacct"},
		{id: "name=systemd", controllers: []string{"name=systemd"}, dir: "/sys/fs/cgroup/systemd"},
		{id: unifiedHierarchy, dir: "/sys/fs/cgroup/unified"},
	}
	roots := []cgroupRoot{
		{[]string{"name=systemd"}, "/lxc.payload.c1-3"},
		{[]string{"cpuacct"}, "/lxc.payload.c1-3"},
		{[]string{"hugetlb"}, "/lxc.payload.c1-4"},
	}
	got := restoredCgroupBases(mounts, roots)
	want := map[string]string{
		"cpu,cpuacct":    "/sys/fs/cgroup/cpu,cpuacct/lxc.payload.c1-3",
		"name=systemd":   "/sys/fs/cgroup/systemd/lxc.payload.c1-3",
		unifiedHierarchy: "/sys/fs/cgroup/unified/lxc.payload.c1-4",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestProcCgroups(t *testing.T) {
	got := procCgroups([]byte("9:name=systemd:/lxc.payload.c1/init.scope\n1:cpu,cpuacct:/x\n0::/lxc.payload.c1/init.scope\n"))
	want := map[string]string{"name=systemd": "/lxc.payload.c1/init.scope", "cpu,cpuacct": "/x", unifiedHierarchy: "/lxc.payload.c1/init.scope"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
}
