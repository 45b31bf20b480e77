package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifyReady tells systemd (ctrfs.service is Type=notify, see
// dist/ctrfs.service) that the tree is served, so that units ordered after
// ctrfs find it. It asks the mount first: READY=1 goes only once a lookup
// in the tree has been answered by this daemon. Without NOTIFY_SOCKET (not
// started by systemd) nothing is sent.
func notifyReady(mountDir string, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(mountDir, "host")); err != nil {
		return fmt.Errorf("mount %s does not answer: %w", mountDir, err)
	}
	sdNotify(log, daemon.SdNotifyReady+"\nSTATUS=serving "+mountDir)
	return nil
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
