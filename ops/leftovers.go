package ops

import (
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"ctrfs/ops/lxchelper"
	"ctrfs/ops/lxcpath"
	"ctrfs/ops/staging"
)

// killLeftovers ends, before anything else of a starting daemon, the CRIU
// runs that an earlier daemon of this store left working in its staging
// directories: the helpers of a daemon stop their CRIU when it dies (see
// lxchelper/lifeline.go), but not a helper that was killed with it, nor
// one of a ctrfs from before lifelines. Left alone, such a CRIU can wait
// for good, and would write or read images that recovery is about to
// store or remove. The container of a dump cut short is resumed
// (lxchelper.ResumeInterruptedDump); a post-copy move's lazy dump is
// settled with its move (cluster's recoverPostCopy), and a restore cut
// short leaves a container that recovery finds stopped.
func killLeftovers(area *staging.Area, containers *lxcpath.Containers, log *slog.Logger) {
	roots := area.LeftRoots()
	procs, err := procfs.AllProcs()
	if err != nil {
		return
	}
	// A dump is let finish first, DumpGrace at most (see
	// lxchelper.DumpGrace): killing its CRIU while it infects a task can
	// kill the task.
	for deadline := time.Now().Add(lxchelper.DumpGrace); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !dumpsLeft(procs, roots) {
			break
		}
	}
	var killed []int
	var dumped []string
	for _, p := range procs {
		if lxchelper.Gone(p.PID) {
			continue
		}
		dir, dump, ok := leftCRIU(p, roots)
		if !ok {
			continue
		}
		for _, q := range append([]procfs.Proc{p}, lxchelper.Descendants(p.PID)...) {
			syscall.Kill(q.PID, syscall.SIGKILL)
			killed = append(killed, q.PID)
		}
		log.Warn("killed a CRIU that an earlier daemon left running", "pid", p.PID, "images", dir)
		if purpose, name, ok := staging.Parse(filepath.Base(dir)); ok && dump && purpose != "lazy" {
			dumped = append(dumped, name)
		}
	}
	for deadline := time.Now().Add(lxchelper.StopLimit); len(killed) > 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if lxchelper.Gone(killed[0]) {
			killed = killed[1:]
		}
	}
	for _, name := range dumped {
		if containers.Exists(name) {
			lxchelper.ResumeInterruptedDump(containers.Path(), name)
		}
	}
}

// dumpsLeft says whether one of procs is a dump's CRIU of roots, still
// running.
func dumpsLeft(procs procfs.Procs, roots []string) bool {
	for _, p := range procs {
		dir, dump, ok := leftCRIU(p, roots)
		if !ok || !dump || lxchelper.Gone(p.PID) {
			continue
		}
		// Not a post-copy move's lazy dump: it serves pages until the
		// move is settled (cluster's recoverPostCopy).
		if purpose, _, ok := staging.Parse(filepath.Base(dir)); !ok || purpose != "lazy" {
			return true
		}
	}
	return false
}

// leftCRIU says whether p is root's CRIU working on images in a directory
// under one of roots, which one, and whether it dumps.
func leftCRIU(p procfs.Proc, roots []string) (dir string, dump, ok bool) {
	if comm, err := p.Comm(); err != nil || comm != "criu" {
		return "", false, false
	}
	if st, err := p.NewStatus(); err != nil || st.UIDs[1] != 0 {
		return "", false, false
	}
	args, err := p.CmdLine()
	if err != nil || len(args) < 2 {
		return "", false, false
	}
	for i, a := range args {
		if v, found := strings.CutPrefix(a, "--images-dir="); found {
			dir = v
		} else if (a == "-D" || a == "--images-dir") && i+1 < len(args) {
			dir = args[i+1]
		}
	}
	dir = filepath.Clean(dir)
	for _, root := range roots {
		if strings.HasPrefix(dir, filepath.Clean(root)+"/") {
			// A pre-dump freezes and infects the tasks as a dump does.
			return dir, args[1] == "dump" || args[1] == "pre-dump", true
		}
	}
	return "", false, false
}
