package lazypages

import (
	"fmt"
	"os"
	"strings"
)

// The tasks CRIU restores lazily open their userfaultfd themselves
// (criu/uffd.c setup_uffd), after entering the container's user namespace
// when it is unprivileged. There userfaultfd(2) lets them handle kernel
// faults only if vm.unprivileged_userfaultfd is 1 (it wants CAP_SYS_PTRACE
// in the host's user namespace otherwise): with the default 0 the restore
// fails with "uffd: Unable to open an userfaultfd descriptor: Operation
// not permitted". Since Linux 6.1, /dev/userfaultfd makes the same
// userfaultfd with no capability check, and ctrfs's CRIU (patch 0008)
// has its usernsd open the device for them (devuffd.go). Privileged
// containers' tasks are root on the host, and unaffected.

// unprivilegedUffdSysctl is where the kernel's setting is read.
const unprivilegedUffdSysctl = "/proc/sys/vm/unprivileged_userfaultfd"

// InUserNamespace is nil if a task in an unprivileged container's user
// namespace may be restored lazily on this host, or why not.
func InUserNamespace() error {
	b, err := os.ReadFile(unprivilegedUffdSysctl)
	if err != nil {
		return fmt.Errorf("cannot read vm.unprivileged_userfaultfd: %v", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "1" {
		return nil
	}
	if why := noDevUserfaultfd(); why != "" {
		return fmt.Errorf("vm.unprivileged_userfaultfd is %s and %s, so the container's restored tasks, in its user namespace, may not open the userfaultfd that lazy pages need", v, why)
	}
	return nil
}
