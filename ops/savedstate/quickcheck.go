package savedstate

import (
	"fmt"
	"strings"

	"ctrfs/ops/errkind"
)

// QuickCheck is the part of `check` that needs no dump: the limits of this
// host that the container's tasks meet (hostBlockers), read from /proc in
// milliseconds. snapshot --stateful and a live move run it before they
// archive or send anything: a container that CRIU is bound to refuse
// failed after the whole rootfs was archived (30 s for a Debian one),
// or sent (45 s), on what `check` knew at once. what is the operation,
// for the error ("take a stateful snapshot of", "move").
func (k *Keeper) QuickCheck(name, what string) error {
	if found := k.hostBlockers(name); len(found) > 0 {
		return errkind.New(errkind.ErrUnsupported, fmt.Sprintf("cannot %s %s: %s", what, name, cannotCheckpoint(name, found)), nil)
	}
	return nil
}

// cannotCheckpoint words what check found: the causes, numbered.
func cannotCheckpoint(name string, found []string) string {
	numbered := make([]string, len(found))
	for i, f := range found {
		numbered[i] = fmt.Sprintf("(%d) %s", i+1, f)
	}
	return fmt.Sprintf("%s cannot be checkpointed: %s", name, strings.Join(numbered, "; "))
}
