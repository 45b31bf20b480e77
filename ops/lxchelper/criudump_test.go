package lxchelper

import (
	"strings"
	"testing"
)

// The mount entries for which LXC's exec_criu adds --ext-mount-map: bind
// mounts only, the target as getmntent(3) unescapes it.
func TestBindMountTarget(t *testing.T) {
	for _, c := range []struct {
		entry, want string
		ok          bool
	}{
		{"/lib lib none ro,bind 0 0", "lib", true},
		{"/srv/a srv/a none rbind,create=dir 0 0", "srv/a", true},
		{"/srv/my\\040dir mnt/my\\040dir none bind", "mnt/my dir", true},
		{"shm dev/shm tmpfs defaults,create=dir 0 0", "", false},
		{"proc proc proc nodev,noexec,nosuid 0 0", "", false},
		{"/x binder none bindx 0 0", "", false},
		{"short entry", "", false},
	} {
		got, ok := bindMountTarget(c.entry)
		if got != c.want || ok != c.ok {
			t.Errorf("bindMountTarget(%q) = %q, %v; want %q, %v", c.entry, got, ok, c.want, c.ok)
		}
	}
}

// LXC's log lines of a dump that its monitor cannot serve, as LXC 5.0.2
// writes them, and one of a dump that failed in CRIU.
func TestLXCLostFreezer(t *testing.T) {
	for line, want := range map[string]bool{
		"lxc-checkpoint c1 20261127171219.147 ERROR    criu - ../src/lxc/criu.c:exec_criu:402 - No such file or directory - Failed getting freezer path":                      true,
		"lxc-checkpoint c1 20261127171219.147 ERROR    criu - ../src/lxc/criu.c:exec_criu:262 - No such file or directory - Failed to retrieve limit cgroup path for hugetlb": true,
		"lxc-checkpoint c1 20261127171219.148 ERROR    criu - ../src/lxc/criu.c:do_dump:1297 - dump failed with 1":                                                            false,
	} {
		if got := lxcLostFreezer.MatchString(line); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

// The command line is LXC 5.0.2's for the same container, as its TRACE log
// showed it ("Using command line") for a dump on a cgroup2-only view of
// this machine (hugetlb the only cgroup2 controller); the bind mount's
// place and form are exec_criu's.
func TestExecCriuDumpArgs(t *testing.T) {
	lxc := "dump --tcp-established --file-locks --link-remap --manage-cgroups=full --ext-mount-map auto --enable-external-sharing --enable-external-masters --enable-fs hugetlbfs --enable-fs tracefs -D /tmp/hc-ck1 -o /tmp/hc-ck1/dump.log --cgroup-root hugetlb:lxc.payload.c1-56 -t 492 --skip-in-flight --freeze-cgroup /sys/fs/cgroup/lxc.payload.c1-56 --force-irmap --leave-running"
	entries := []string{"shm dev/shm tmpfs defaults,create=dir 0 0"}
	got := strings.Join(execCriuDumpArgs(dumpRun{dir: "/tmp/hc-ck1"}, "/lxc.payload.c1-56", []string{"hugetlb"}, entries, 492), " ")
	if got != lxc {
		t.Errorf("leave running:\n got %s\nwant %s", got, lxc)
	}
	entries = append(entries, "/srv/data srv/data none bind,create=dir 0 0")
	want := strings.Replace(strings.TrimSuffix(lxc, " --leave-running"), " -t 492", " --ext-mount-map /srv/data:srv/data -t 492", 1)
	want = strings.Replace(want, "hugetlb:lxc", "cpu,memory:lxc", 1)
	got = strings.Join(execCriuDumpArgs(dumpRun{dir: "/tmp/hc-ck1", stop: true}, "/lxc.payload.c1-56", []string{"cpu", "memory"}, entries, 492), " ")
	if got != want {
		t.Errorf("stop, a bind mount:\n got %s\nwant %s", got, want)
	}
	if got := execCriuDumpArgs(dumpRun{dir: "/d", stop: true}, "/lxc.payload.c1", nil, nil, 7); !strings.Contains(strings.Join(got, " "), "--cgroup-root lxc.payload.c1 -t 7") {
		t.Errorf("no controllers: %v", got)
	}
}

// A pre-dump and the final dump over it, as exec_criu words them: the
// action names the log, --prev-images-dir and --track-mem come after
// --freeze-cgroup, a pre-dump maps a bind mount's target to its source and
// never takes --leave-running (its tasks always run on).
func TestExecCriuPreDumpArgs(t *testing.T) {
	entries := []string{"/srv/data srv/data none bind,create=dir 0 0"}
	head := " --tcp-established --file-locks --link-remap --manage-cgroups=full --ext-mount-map auto --enable-external-sharing --enable-external-masters --enable-fs hugetlbfs --enable-fs tracefs"
	for _, c := range []struct {
		d    dumpRun
		want string
	}{
		{dumpRun{dir: "/s/r1", preDump: true},
			"pre-dump" + head + " -D /s/r1 -o /s/r1/pre-dump.log --cgroup-root hugetlb:lxc.payload.c1 --ext-mount-map srv/data:/srv/data -t 492 --skip-in-flight --freeze-cgroup /sys/fs/cgroup/lxc.payload.c1 --force-irmap"},
		{dumpRun{dir: "/s/r2", preDump: true, parent: "/s/r1"},
			"pre-dump" + head + " -D /s/r2 -o /s/r2/pre-dump.log --cgroup-root hugetlb:lxc.payload.c1 --ext-mount-map srv/data:/srv/data -t 492 --skip-in-flight --freeze-cgroup /sys/fs/cgroup/lxc.payload.c1 --prev-images-dir /s/r1 --track-mem --force-irmap"},
		{dumpRun{dir: "/s/d", stop: true, parent: "/s/r2"},
			"dump" + head + " -D /s/d -o /s/d/dump.log --cgroup-root hugetlb:lxc.payload.c1 --ext-mount-map /srv/data:srv/data -t 492 --skip-in-flight --freeze-cgroup /sys/fs/cgroup/lxc.payload.c1 --prev-images-dir /s/r2 --track-mem --force-irmap"},
	} {
		got := strings.Join(execCriuDumpArgs(c.d, "/lxc.payload.c1", []string{"hugetlb"}, entries, 492), " ")
		if got != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.d, got, c.want)
		}
		if log := DumpLog(map[bool]Verb{true: PreDump, false: Checkpoint}[c.d.preDump]); !strings.Contains(got, "/"+log+" ") {
			t.Errorf("%+v: DumpLog %s is not the log CRIU writes: %s", c.d, log, got)
		}
	}
}
