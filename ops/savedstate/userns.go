package savedstate

import (
	"fmt"
	"os"
)

// inUserNamespace says whether the task pid is in a user namespace other
// than the daemon's: an unprivileged container's. Its tasks' limits are
// readable without CAP_SYS_RESOURCE in the host's namespace: prlimit(2)
// asks for the capability in the task's own user namespace, which root,
// its owner, has in full (issue 21 research), whatever their uids.
func inUserNamespace(pid int) bool {
	own, err1 := os.Readlink("/proc/self/ns/user")
	its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
	return err1 == nil && err2 == nil && own != its
}
