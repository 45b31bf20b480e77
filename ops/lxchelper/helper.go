// Package lxchelper is the helper process, `ctrfs lxc-helper VERB LXCPATH
// NAME LOGFILE ARGS…`, in which the daemon runs the LXC calls that fork a
// long-lived monitor or run CRIU (start, checkpoint, restore), and both
// its ends: the daemon's, which starts it and waits for it with a deadline
// (run.go), and the helper's own (Main), with what only it uses: CRIU's
// options (criuoptions.go), the container's cgroups recorded and made
// again (cgroups.go, cgroup2limits.go), CRIU run without LXC where LXC
// cannot dump (criudump.go), the freeze of a container (freeze.go) and
// the gratuitous ARP after a move (announce.go). A helper dies with its
// daemon and takes what it runs with it (lifeline.go, descendants.go,
// interrupted.go); every CRIU run has a deadline (criulimit.go).
//
// It runs in a process of its own because a monitor forked from the
// daemon would inherit its threads' state, its descriptors and its
// process group, and CRIU_CONFIG_FILE, by which CRIU gets its options, is
// one per process. It knows nothing of the store or of operations: it is
// given a container's name, an images directory and a verb.
package lxchelper

import (
	"context"
	"fmt"
	"os"
	"time"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/lazypages"
)

// Verb is what a helper is run to do, with the arguments after LOGFILE
// that each takes.
type Verb string

const (
	// Start starts the container; no arguments.
	Start Verb = "start"
	// Checkpoint dumps the container into DIR and stops it; with PARENT
	// after DIR, the images of a pre-dump (see PreDump), only the pages
	// dirtied since.
	Checkpoint Verb = "checkpoint"
	// PreDump is CRIU's pre-dump into DIR: the memory only, the container
	// running on, and the kernel told to track what it dirties from
	// here; with PARENT after DIR, the pre-dump before, only the pages
	// dirtied since. It needs the kernel's soft-dirty bits
	// (ops.DirtyTracking).
	PreDump Verb = "pre-dump"
	// CheckpointRunning dumps the container into DIR and leaves it
	// running; with ROOTFS ARCHIVE [STATE] after DIR, CRIU's post-dump
	// hook archives the rootfs (or what changed since STATE) while its
	// tasks are still frozen; with ROOTFS --subvolume DEST, it makes
	// DEST a read-only snapshot of the rootfs subvolume.
	CheckpointRunning Verb = "checkpoint-running"
	// CheckpointLazy dumps the container into DIR for a post-copy move:
	// DIR ADDR PORT TLSDIR, its page server serving the memory on
	// ADDR:PORT with the TLS credentials in TLSDIR; the tasks are left
	// stopped.
	CheckpointLazy Verb = "checkpoint-lazy"
	// Restore restores the container from DIR, then the arguments below
	// as needed (see restore.go).
	Restore Verb = "restore"
	// RestoreFrozen is Restore, and freezes the container before the
	// helper exits.
	RestoreFrozen Verb = "restore-frozen"
	// RestoreRehearsal restores the container's images, with Restore's
	// arguments, as a throwaway copy beside the frozen container, and
	// kills the copy (see rehearse.go): it proves that they restore.
	RestoreRehearsal Verb = "restore-rehearsal"
	// CheckpointHeld dumps a container that the daemon froze (ops/hold.go)
	// into DIR, over the pre-dump images PARENT if given after DIR (see
	// Checkpoint), and leaves it frozen: CRIU restores the freezer state
	// it found.
	CheckpointHeld Verb = "checkpoint-held"
	// Announce sends a gratuitous ARP for each of the container's
	// addresses; no arguments.
	Announce Verb = "announce"
)

// DumpLog is the name of CRIU's log in the images directory of a dump
// made by verb: exec_criu names it after CRIU's action.
func DumpLog(verb Verb) string {
	if verb == PreDump {
		return "pre-dump.log"
	}
	return "dump.log"
}

// The arguments of the restore verbs after DIR.
const (
	ArgStream      = "stream"       // the daemon serves the images in DIR (images.ServeImages)
	ArgLazyPages   = "lazy-pages"   // CRIU's lazy-pages daemon listens in DIR for the memory
	ArgMntnsCompat = "mntns-compat" // CRIU's older mount engine (see ops/restoremode.go)
	// EngineMountV2 names CRIU's default mount engine, which no argument
	// asks for (ArgMntnsCompat names the other).
	EngineMountV2 = "mount-v2"
)

// Main is `ctrfs lxc-helper VERB LXCPATH NAME LOGFILE [ARGS…]`: the LXC
// calls that fork a long-lived monitor, run in a short-lived process of
// their own (see ops.Config.HelperPath). It returns the exit code. Its work
// ends with its daemon (see lifeline.go): what it runs is killed, and a
// dump cut short is undone.
func Main(args []string) int {
	if len(args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs lxc-helper VERB LXCPATH NAME LOGFILE [ARGS…]")
		return 2
	}
	verb, lxcpath, name, logFile, rest := Verb(args[0]), args[1], args[2], args[3], args[4:]
	var undo func()
	if verb == Checkpoint || verb == CheckpointRunning || verb == CheckpointHeld || verb == PreDump {
		// Not checkpoint-lazy: what becomes of a post-copy move's
		// tasks is the move's to settle (cluster/postcopy.go).
		undo = func() { ResumeInterruptedDump(lxcpath, name) }
	}
	if verb == RestoreRehearsal {
		undo = func() { resumeInterruptedRehearsal(lxcpath, name) }
	}
	dumping := undo != nil
	if verb == Restore || verb == RestoreFrozen {
		// Its CRIU is not let finish as a dump's is: killed at once.
		undo = removeRestoreCgroups
		// Reached only if the lifeline did not end the helper
		// (life.exit never returns then).
		defer removeRestoreRecord()
	}
	life := followLifeline(undo, dumping)
	c, err := lxc.NewContainer(name, lxcpath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return life.exit(1)
	}
	defer c.Release()
	c.SetLogFile(logFile)
	c.SetLogLevel(lxc.INFO)
	c.WantCloseAllFds(true)
	switch verb {
	case Start:
		err = c.Start()
		if err == nil && !c.Wait(lxc.RUNNING, 30*time.Second) {
			err = fmt.Errorf("not running 30s after start")
		}
	case Checkpoint, PreDump, CheckpointHeld:
		if len(rest) != 1 && len(rest) != 2 {
			err = fmt.Errorf("%s takes the image directory, and optionally the parent images", verb)
			break
		}
		d := dumpRun{dir: rest[0], stop: verb == Checkpoint, preDump: verb == PreDump}
		if len(rest) == 2 {
			d.parent = rest[1]
		}
		err = dump(c, lxcpath, d)
		if err == nil && verb == CheckpointHeld {
			err = ThawedImages(d.dir)
		}
	case CheckpointRunning:
		switch len(rest) {
		case 1:
			err = checkpoint(c, lxcpath, rest[0], false)
		case 3, 4:
			err = checkpointWithRootfs(c, lxcpath, rest[0], rest[1], rest[2], rest[3:]...)
		default:
			err = fmt.Errorf("checkpoint-running takes the image directory, and optionally the rootfs, its archive and tar's incremental state")
		}
	case CheckpointLazy:
		// DIR ADDR PORT TLSDIR: see ops/moves/lazydump.go. The container is
		// held (frozen by the daemon, ops/hold.go) and left running:
		// CRIU restores the freezer state it found, so the tasks stay
		// frozen whatever the end of the transfer, never killed by
		// CRIU, with their TCP connections out of repair mode; the page
		// server speaks TLS only (lazypages/tls.go).
		if len(rest) != 4 {
			err = fmt.Errorf("checkpoint-lazy takes the image directory, the page server's address and port, and its TLS directory")
			break
		}
		lazy := []string{"lazy-pages", "address " + rest[1], "port " + rest[2]}
		err = checkpoint(c, lxcpath, rest[0], false, append(lazy, lazypages.TLSOptions(rest[3])...)...)
	case Restore, RestoreFrozen:
		var opts restoreOptions
		opts, err = parseRestoreArgs(verb, rest)
		if err != nil {
			break
		}
		err = restoreContainer(c, lxcpath, opts)
		if err == nil {
			reapplyCgroup2Limits(c)
			redelegateCgroups(c)
		}
		if err == nil && verb == Restore {
			// A checkpoint of a frozen container (ops/hold.go) restores
			// frozen: CRIU sets the freezer state it recorded.
			err = ThawAfterDump(c, c.InitPid())
		}
		if err == nil && verb == RestoreFrozen {
			// Here, not in the daemon, so that a daemon that dies
			// meanwhile cannot leave it running.
			err = FreezeWithin(context.Background(), c, FreezeLimit)
		}
	case RestoreRehearsal:
		var opts restoreOptions
		opts, err = parseRestoreArgs(verb, rest)
		if err == nil {
			err = rehearseRestore(c, lxcpath, opts)
		}
	case Announce:
		err = announce(c)
	default:
		err = fmt.Errorf("unknown helper verb %q", verb)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return life.exit(1)
	}
	return life.exit(0)
}
