package ops

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestCommonBlockerCauses: the common blockers of a dump, as CRIU 4.2.1
// logs them here, get a cause and a fix from `error` (explainCRIU) and
// `check` (blockers): a host file a task inherited through lxc-attach, a
// nested user namespace (naming the task and its unit), and a task of
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
			[]string{fmt.Sprintf("task %d (ops.test", os.Getpid()), "PrivateUsers="}},
		{"another user's task", "(00.05) Error (criu/cr-dump.c:347): Can't get rlimit 0: Operation not permitted\n",
			[]string{"CAP_SYS_RESOURCE", "uid 0"}},
	} {
		log := []byte(noise + c.line + "(00.40) Error (criu/cr-dump.c:2093): Dumping FAILED.\n")
		got := explainCRIU(log)
		b := blockers(log)
		if len(b) != 1 || b[0] != got {
			t.Errorf("%s: blockers %q, explainCRIU %q", c.what, b, got)
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
