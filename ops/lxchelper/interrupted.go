package lxchelper

import (
	"fmt"
	"os"
	"path/filepath"

	lxc "github.com/lxc/go-lxc"
)

// ResumeInterruptedDump brings back a container whose dump's CRIU was
// killed before it was done (its helper stopped, see lifeline.go; or its
// daemon found it left, see ops/leftovers.go). CRIU's death lets the tasks go
// (they were its tracees), but what it did to the container stays: the
// freezer frozen if CRIU was still seizing the tasks (it thaws it once
// they are seized), and the network locked (CRIU unlocks it only when the
// dump ends). A container whose tasks CRIU had killed (the dump was done)
// is left as it is.
func ResumeInterruptedDump(lxcpath, name string) {
	c, err := lxc.NewContainer(name, lxcpath)
	if err != nil {
		return
	}
	defer c.Release()
	pid := c.InitPid()
	if pid <= 0 || !c.Running() {
		return
	}
	if c.State() == lxc.FROZEN {
		// Held (ops/hold.go): frozen through LXC, whose monitor keeps
		// the state, and would go on saying FROZEN after the cgroup's
		// thaw below.
		c.Unfreeze()
	}
	if err := c.SetCgroupItem("freezer.state", "THAWED"); err != nil {
		if err := c.SetCgroupItem("cgroup.freeze", "0"); err != nil {
			fmt.Fprintf(os.Stderr, "cannot thaw %s after its dump was cut short: %v\n", name, err)
		}
	}
	if err := UnlockNetwork(pid); err != nil {
		fmt.Fprintf(os.Stderr, "cannot unlock the network of %s after its dump was cut short: %v\n", name, err)
	}
	releaseHeld(lxcpath, name)
}

// resumeInterruptedRehearsal brings back a container held for a restore
// rehearsal whose daemon died: the copy is killed, the container thawed
// and put back on the wire (the checkpoint was not proven). A move's
// hold is its journal's to settle.
func resumeInterruptedRehearsal(lxcpath, name string) {
	removeRehearsal(filepath.Join(lxcpath, rehearsalPrefix+name), name)
	if h := ReadHold(lxcpath, name); h != nil && h.Purpose != "move" {
		ResumeInterruptedDump(lxcpath, name)
	}
}
