package lxchelper

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

// intoLXCsCgroup2 puts on PATH a criu that restores into the cgroup2
// cgroup at the root named as the cgroup that LXC gives for its first
// hierarchy (LXC made that name in every hierarchy; on a cgroup2-only
// host it is cgroup2's own, named again); `criu --version`, which LXC
// runs before it makes any cgroup, gets none.
func intoLXCsCgroup2() (undo func(), err error) {
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
			"fi\n")
}
