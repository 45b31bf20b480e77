package lxchelper

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
)

// A held container (ops/hold.go) is dumped frozen, and CRIU records the
// freezer's state with the container's cgroups. With cgroup v1's freezer
// that is freezer.state, which CRIU sets last, once the restored tasks are
// whole and before they go (cr-restore.c restore_freezer_state): the copy
// comes up frozen, and its tasks never run. With cgroup2 it is cgroup.freeze,
// which CRIU restores like any other property, early, with the tasks it
// is still restoring in the cgroup: they freeze under CRIU, and the
// restore hangs until its deadline. So the images of a held dump say
// cgroup.freeze 0 (ThawedImages), and a rehearsal freezes its copy itself
// at CRIU's pre-resume action, when the tasks are whole and still stopped
// by CRIU (freezeRestoredHook).

// ThawedImages rewrites the cgroup image in dir so that no cgroup2 cgroup
// is restored frozen.
func ThawedImages(dir string) error {
	path := filepath.Join(dir, "cgroup.img")
	in, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	img, err := crit.New(in, nil, "", false, false).Decode(&cgroup.CgroupEntry{})
	in.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	changed := false
	for _, e := range img.Entries {
		for _, ctl := range e.Message.(*cgroup.CgroupEntry).GetControllers() {
			changed = thawDirs(ctl.GetDirs()) || changed
		}
	}
	if !changed {
		return nil
	}
	out, err := os.CreateTemp(dir, ".cgroup.img-*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	if err := crit.New(nil, out, "", false, false).Encode(img); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), path)
}

func thawDirs(dirs []*cgroup.CgroupDirEntry) bool {
	changed := false
	for _, d := range dirs {
		for _, p := range d.GetProperties() {
			if p.GetName() == "cgroup.freeze" && p.GetValue() != "0" {
				p.Value = new(string)
				*p.Value = "0"
				changed = true
			}
		}
		changed = thawDirs(d.GetChildren()) || changed
	}
	return changed
}

// freezeRestoredHook is the CRIU action script by which a rehearsal's
// copy freezes before its tasks go.
const freezeRestoredHook = `#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = pre-resume ] || exit 0
exec "$CTRFS_HELPER" freeze-restored "$CRTOOLS_INIT_PID" "$CTRFS_CGROUP"
`

// FreezeRestoredMain is `ctrfs freeze-restored PID CGROUP`, which
// freezeRestoredHook runs: it freezes the container whose init is PID, in
// cgroup v1's freezer where the host mounts it, and in cgroup2's at CGROUP
// (the copy's, rehearsalCgroup), where its tasks are.
func FreezeRestoredMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs freeze-restored PID CGROUP")
		return 2
	}
	pid, err := strconv.Atoi(args[0])
	if err == nil {
		err = freezeTree(pid, args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs freeze-restored:", err)
		return 1
	}
	return 0
}

func freezeTree(pid int, cgroup string) error {
	mounts, roots, err := mountsAndRoots(pid)
	if err != nil {
		return err
	}
	froze := false
	for _, m := range mounts {
		var file, state string
		switch {
		case contains(m.controllers, "freezer"):
			file, state = filepath.Join(m.dir, roots[m.id], "freezer.state"), "FROZEN"
		case m.id == unifiedHierarchy:
			file, state = filepath.Join(m.dir, cgroup, "cgroup.freeze"), "1"
		default:
			continue
		}
		if err := os.WriteFile(file, []byte(state), 0o644); err != nil {
			return err
		}
		froze = true
	}
	if !froze {
		return fmt.Errorf("no cgroup freezer is mounted")
	}
	return nil
}

// thawRehearsal thaws cgroup2's freezer of a rehearsal's copy (cgroup v1's
// is LXC's to thaw: ThawAfterDump).
func thawRehearsal(cgroup string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if m.id == unifiedHierarchy {
			return os.WriteFile(filepath.Join(m.dir, cgroup, "cgroup.freeze"), []byte("0"), 0o644)
		}
	}
	return nil
}
