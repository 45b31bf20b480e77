package lxchelper

import (
	"reflect"
	"testing"
)

func TestParseCriuOptions(t *testing.T) {
	dump, restore, err := ParseCriuOptions([]byte("# comment\nenable-fs ramfs\n\ndump: ghost-limit 1M  # big files\nrestore: tcp-close\n"))
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
		if _, _, err := ParseCriuOptions([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
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
