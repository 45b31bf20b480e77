package lxchelper

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LXC 5.0.2's restore gives CRIU the container's new cgroups for the v1
// hierarchies only (--cgroup-root CONTROLLERS:PATH), so CRIU restores
// the tasks into the cgroup2 cgroup that the images name: the one the
// container had where it was dumped, not the one LXC has just made for
// it. Where that is another container's (two daemons on one kernel, with
// a name LXC gave a suffix; a rehearsal beside the held container), that
// container's end removes the empty cgroups whose cgroup.events systemd
// watches, and CRIU cannot dump the restored container again ("fsnotify:
// Can't dump that handle"). So each restore names cgroup2's root itself
// (`--cgroup-root :/PATH`: CRIU names cgroup2's controller ""): the cgroup
// LXC made (intoLXCsCgroup2), or a rehearsal's own, in its CRIU config;
// and the hook that makes the recorded cgroups makes them there
// (cgroup2RootEnv).
//
// Why not guess LXC's cgroup before the restore (the first of
// lxc.payload.NAME, NAME-1, ... that no hierarchy has, as cgfsng tries
// them): another container of that name that starts or ends between the
// guess and LXC's mkdir (a move's source ending, another LXC path's
// container) makes LXC choose another, and CRIU then made the guessed
// one in cgroup2 alone, where nothing removed it: every such restore
// left an empty lxc.payload.NAME-N behind, and at the 1,000th LXC can
// start no container NAME. The criu that LXC runs knows its choice.

// cgroup2RootEnv tells the make-cgroups hook cgroup2's root of the restore.
const cgroup2RootEnv = "CTRFS_CGROUP2_ROOT"

// restoreCgroupEnv names the file where the restore's criu writes the
// name of the cgroups LXC made, for removeRestoreCgroups.
const restoreCgroupEnv = "CTRFS_RESTORE_CGROUP"

// intoLXCsCgroup2 puts on PATH a criu that restores into the cgroup2
// cgroup at the root named as the cgroup that LXC gives for its first
// hierarchy (LXC made that name in every hierarchy; on a cgroup2-only
// host it is cgroup2's own, named again); `criu --version`, which LXC
// runs before it makes any cgroup, gets none.
func intoLXCsCgroup2() (undo func(), err error) {
	// Its record is removed when the helper ends (removeRestoreRecord),
	// not with the criu: a lifeline that ends the restore lets the
	// restore return, and its undo run, before the lifeline's own undo
	// (removeRestoreCgroups) reads it.
	record, err := os.CreateTemp("", restoreRecordPrefix)
	if err != nil {
		return nil, err
	}
	record.Close()
	if err := os.Setenv(restoreCgroupEnv, record.Name()); err != nil {
		os.Remove(record.Name())
		return nil, err
	}
	return criuOnPath("a restore's criu, into the cgroup2 cgroup LXC made (ops/lxchelper/cgroup2root.go)",
		"root= prev=\n"+
			"for a do\n"+
			"\t[ \"$prev\" = --cgroup-root ] && [ -z \"$root\" ] && root=${a#*:}\n"+
			"\tprev=$a\n"+
			"done\n"+
			"root=${root##*/}\n"+
			"if [ -n \"$root\" ]; then\n"+
			"\texport "+cgroup2RootEnv+"=\"$root\"\n"+
			"\tset -- \"$@\" --cgroup-root \":/$root\"\n"+
			"\techo \"$root\" > \"$"+restoreCgroupEnv+"\"\n"+
			"fi\n")
}

// restoreRecordPrefix starts the name of intoLXCsCgroup2's record.
const restoreRecordPrefix = "ctrfs-restore-cgroup-"

// removeRestoreRecord removes the record of intoLXCsCgroup2, if any.
func removeRestoreRecord() {
	record := os.Getenv(restoreCgroupEnv)
	if filepath.Dir(record) == filepath.Clean(os.TempDir()) && strings.HasPrefix(filepath.Base(record), restoreRecordPrefix) {
		os.Remove(record)
	}
}

// removeRestoreCgroups removes the cgroups that LXC made for a restore
// that the helper's lifeline ended (the daemon died or gave up on it):
// the helper kills LXC's monitor with the rest, and one killed while CRIU
// restored (from the namespaces' setup to the network's unlock) had not
// removed them: each such restore left an lxc.payload.NAME in every
// hierarchy. They are the ones the restore's criu was given
// (intoLXCsCgroup2), so never another container's; one that still holds
// a task stays (rmdir fails). Before LXC ran that criu there is no name.
func removeRestoreCgroups() {
	defer removeRestoreRecord()
	data, err := os.ReadFile(os.Getenv(restoreCgroupEnv))
	name := strings.TrimSpace(string(data))
	if err != nil || !strings.HasPrefix(name, "lxc.payload.") || strings.Contains(name, "/") {
		return
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return
	}
	// The tasks that stopDescendants killed may take a moment to leave.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left := false
		for _, m := range mounts {
			dir := filepath.Join(m.dir, name)
			removeCgroupTree(dir)
			left = left || fileExists(dir)
		}
		if !left || time.Now().After(deadline) {
			return
		}
	}
}
