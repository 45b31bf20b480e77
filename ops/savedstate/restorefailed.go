package savedstate

import (
	"fmt"
	"strings"

	"ctrfs/ops/criulog"
)

// restoreFailed words a start whose restore CRIU failed (criuRestore's
// err): what was tried, what could get the state back (criulog's fixes
// for what the log shows), and that the state is kept until `stop`.
func restoreFailed(name string, err error, log []byte) string {
	msg := fmt.Sprintf("restore of %s failed %v; its saved state is kept until `stop` discards it", name, err)
	fixes := criulog.RestoreFixes(log)
	fixes = append(fixes, "for a bug report, the container's `bugreport` file holds the images and logs")
	return msg + ". To get it back, change what applies and `start` again: " + strings.Join(fixes, "; ")
}
