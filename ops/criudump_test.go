package ops

import "testing"

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
