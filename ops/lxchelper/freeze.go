package lxchelper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	lxc "github.com/lxc/go-lxc"
)

// FreezeLimit bounds a freeze: LXC waits for the freezer without a limit,
// and a task in uninterruptible sleep (BusyBox nc in vfork() again) can
// keep a container FREEZING for good.
const FreezeLimit = 10 * time.Second

// FreezeWithin freezes the container, or thaws it and fails if it is not
// frozen within d, or before ctx ends.
//
// With the cgroup v1 freezer it writes FROZEN and polls freezer.state
// itself: LXC's own freeze looks again only once a second, which cost a
// migration's handover a whole second whenever the tasks took a moment to
// freeze. LXC's freeze then only records the state (its monitor keeps it;
// it is not read back from the cgroup), finding the tasks frozen at once.
// Elsewhere (cgroup2) LXC's call waits on cgroup.events, but it cannot be
// cancelled; it runs in a goroutine, and the helper process it runs in
// exits soon after, which ends it.
func FreezeWithin(ctx context.Context, c *lxc.Container, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if c.SetCgroupItem("freezer.state", "FROZEN") == nil {
		for ; ctx.Err() == nil; time.Sleep(2 * time.Millisecond) {
			if st := c.CgroupItem("freezer.state"); len(st) > 0 && strings.TrimSpace(st[0]) == "FROZEN" {
				if err := c.Freeze(); err != nil && !errors.Is(err, lxc.ErrAlreadyFrozen) {
					c.SetCgroupItem("freezer.state", "THAWED")
					return err
				}
				return nil
			}
		}
		stuck := unfrozenTasks(c.CgroupItem("tasks"))
		c.SetCgroupItem("freezer.state", "THAWED")
		return fmt.Errorf("%s did not freeze within %s; not frozen: %s", c.Name(), d, stuck)
	}
	done := make(chan error, 1)
	go func() { done <- c.Freeze() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// c is locked by the call under way; thaw through another handle.
	other, err := lxc.NewContainer(c.Name(), c.ConfigPath())
	if err == nil {
		other.Unfreeze()
		other.Release()
	}
	return fmt.Errorf("%s did not freeze within %s (a task in uninterruptible sleep?)", c.Name(), d)
}

// unfrozenTasks describes the tasks of a freezer cgroup that are not in
// the freezer's trap: pid, command, state and where they wait.
func unfrozenTasks(pids []string) string {
	var out []string
	for _, pid := range pids {
		pid = strings.TrimSpace(pid)
		wchan, _ := os.ReadFile("/proc/" + pid + "/wchan")
		if w := string(wchan); strings.Contains(w, "refrigerator") || strings.Contains(w, "freezer") {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		state := "?"
		if stat, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
				state = string(stat[i+2])
			}
		}
		out = append(out, fmt.Sprintf("%s (%s) %s in %s", pid, strings.TrimSpace(string(comm)), state, wchan))
		if len(out) == 8 {
			break
		}
	}
	if len(out) == 0 {
		return "none found"
	}
	return strings.Join(out, ", ")
}
