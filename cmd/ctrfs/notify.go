package main

import (
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifyReady tells systemd (ctrfs.service is Type=notify, see
// dist/ctrfs.service) that the tree is served, so that units ordered after
// ctrfs find it. It is called once mountFUSE has returned, which waits for
// the kernel's INIT to be answered: from then on the kernel sends every
// request on the mount to this daemon. The daemon does not look into its
// own mount to check: a FUSE server that makes requests to itself can hang
// on them when it is stopped at that moment. Without NOTIFY_SOCKET (not
// started by systemd) nothing is sent.
func notifyReady(mountDir string, log *slog.Logger) {
	sdNotify(log, daemon.SdNotifyReady+"\nSTATUS=serving "+mountDir)
}

// notifyStopping tells systemd that the daemon is going down on a signal.
func notifyStopping(log *slog.Logger) {
	sdNotify(log, daemon.SdNotifyStopping+"\nSTATUS=unmounting")
}

func sdNotify(log *slog.Logger, state string) {
	// NOTIFY_SOCKET stays in the environment for STOPPING=1; the helpers
	// ctrfs runs inherit it, but systemd takes notifications from the
	// main process only (NotifyAccess=main, the default of Type=notify).
	sent, err := daemon.SdNotify(false, state)
	switch {
	case err != nil:
		log.Warn("systemd notification failed", "state", state, "err", err)
	case sent:
		log.Debug("systemd notified", "state", state)
	}
}
