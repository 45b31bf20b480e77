package cluster

import (
	"fmt"

	"ctrfs/ops"
)

// Post-copy moves (`move HOST --post-copy`, or every move with serve
// --post-copy-moves): the source dumps with CRIU's --lazy-pages, so that
// the memory stays in the frozen tasks and its page server hands it out;
// the target restores with --lazy-pages at once and its lazy-pages daemon
// fills the pages in through userfaultfd, on demand and in the
// background. The downtime is the non-memory state's; the risk is that
// until the last page has arrived the container's memory is whole on
// neither host: if the source host dies then, it is lost.
//
// What must hold all the same, and what CRIU does not see to (cr-dump.c,
// page-xfer.c, uffd.c): a clean close of the page server's connection
// counts as success even after a failed restore on the target, and CRIU
// then kills the source's tasks; a transfer error resumes them but leaves
// their network locked; and a target whose lazy-pages daemon died runs on
// with zero-filled pages for what never arrived. So each side decides
// from what it sees itself (afterLazyDump, afterLazyDaemon) and never from
// CRIU's exit alone.
//
// The transfer itself waits for a host where CRIU can do it: on these
// (CRIU 4.2.1, kernel 6.18) every lazy page transfer fails in the page
// server (ops.LazyPages quotes it), so a post-copy move is refused with
// EOPNOTSUPP before anything moves.

// canPostCopy says why this move cannot be post-copy: an EOPNOTSUPP error
// naming the host that cannot and CRIU's words, or nil.
func (mg *migration) canPostCopy() error {
	refuse := func(host string, why any) error {
		return ops.NewError(ops.ErrUnsupported, fmt.Sprintf("cannot move %s post-copy: %s cannot do CRIU lazy pages (%v); move it without --post-copy", mg.o.Name(), host, why))
	}
	if err := ops.LazyPages(); err != nil {
		return refuse(mg.c.cfg.Host, err)
	}
	var why string
	if err := mg.call("Host.LazyPages", true, &why); err != nil {
		return refuse(mg.peer.Name, err)
	}
	if why != "" {
		return refuse(mg.peer.Name, why)
	}
	return ops.NewError(ops.ErrUnsupported, fmt.Sprintf("cannot move %s post-copy: both hosts can do CRIU lazy pages, but this ctrfs does not transfer them yet; move it without --post-copy", mg.o.Name()))
}

// LazyPages answers why this host cannot do CRIU lazy pages, or "".
func (s *Service) LazyPages(_ bool, why *string) error {
	if err := ops.LazyPages(); err != nil {
		*why = err.Error()
	}
	return nil
}

// What the source does once its lazy dump has ended or the target has
// answered.
type sourceAction int

const (
	sourceWaits   sourceAction = iota // pages are still going: ask again
	sourceLetsGo                      // the target's copy is whole and running
	sourceResumes                     // unfreeze, unlock the network: RUNNING here
	sourceLost                        // the memory was only on a target that failed
)

// lazyDumpEnd is how the source's `criu dump --lazy-pages` ended.
type lazyDumpEnd int

const (
	dumpRunning   lazyDumpEnd = iota // still serving pages
	dumpCompleted                    // exit 0: every page was pulled, CRIU killed the tasks
	dumpFailed                       // transfer error: CRIU resumed the tasks, network locked
)

// targetLazyState is what the target reports of its copy.
type targetLazyState int

const (
	targetUnknown targetLazyState = iota // no answer (yet)
	targetFilling                        // restored; its lazy-pages daemon still fetches
	targetWhole                          // restored, every page in, running or frozen
	targetFailed                         // its restore failed or it killed its copy
)

// afterLazyDump decides the source's side. A target that failed before
// the dump completed means the source's tasks still hold the memory: the
// source stops its dump (CRIU would wait for good) and resumes. A
// completed dump is trusted only with the target's word that its copy is
// whole: the clean close CRIU counts as success may follow a failed
// restore there.
func afterLazyDump(dump lazyDumpEnd, target targetLazyState) sourceAction {
	switch dump {
	case dumpFailed:
		return sourceResumes
	case dumpRunning:
		if target == targetFailed {
			return sourceResumes
		}
		return sourceWaits
	}
	switch target {
	case targetWhole:
		return sourceLetsGo
	case targetFailed:
		return sourceLost
	}
	return sourceWaits
}

// afterLazyDaemon decides the target's side once its lazy-pages daemon has
// exited: with every page in, the copy is whole; otherwise its page source
// vanished or the transfer broke, and the copy is killed rather than left
// to run on zero-filled pages.
func afterLazyDaemon(exitedOK, restoreOK bool) (keep bool) {
	return exitedOK && restoreOK
}
