package ops

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"ctrfs/images/trust"
)

// What the daemon reads from its store, LXC path and template cache
// becomes root's actions and containers' processes (rename journals,
// checkpoints, template archives, configs), so it refuses to start on
// any of them that another user could change (trust.TrustedRoot), and
// checks every directory and journal in them before it trusts it. A
// store on a plain tmpfs (mode 1777) let any user plant a rename journal
// that the next start "finished".

// prepareRoots makes the directories the daemon keeps its state in, if
// they are missing, and refuses any that another user could change.
func prepareRoots(cfg Config) error {
	for _, r := range []struct{ what, dir string }{
		{"store", cfg.StoreDir}, {"LXC path", cfg.LXCPath}, {"template cache", cfg.templateCacheDir()},
	} {
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return fmt.Errorf("prepare %s: %w", r.dir, err)
		}
		if err := trust.TrustedRoot(r.dir); err != nil {
			return fmt.Errorf("the %s %s is not safe: %w. Another user could plant there what "+
				"ctrfs acts on as root: make it and every directory above it root's, writable by "+
				"root alone (chown root:root DIR; chmod go-w DIR; a tmpfs: mount it with -o mode=0755), "+
				"or use another directory", r.what, r.dir, err)
		}
	}
	return nil
}

// prepareStoreDir makes a directory of the store, if it is missing, that
// every operation needs, and refuses one that is not ctrfs's own.
func prepareStoreDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("prepare %s: %w", dir, err)
	}
	return notOursFix(trust.TrustedDir(dir))
}

// notOursFix says what to do about a directory of the store that is not
// ctrfs's own, if err is about one.
func notOursFix(err error) error {
	if !errors.Is(err, trust.ErrUntrusted) {
		return err
	}
	return fmt.Errorf("%w. It is not ctrfs's own, and another user may have put things there: "+
		"check what it holds, then remove it or make it root's alone (chown -R root:root, chmod -R go-w)", err)
}

// trustedStoreDir is dir if it is ctrfs's own; it logs one that is not
// (a missing one is no news) and returns the error.
func trustedStoreDir(log *slog.Logger, dir, what string) error {
	err := trust.TrustedDir(dir)
	if err != nil && !os.IsNotExist(err) {
		log.Error("ignoring "+what+" in a directory that is not ctrfs's own: nothing in it is used",
			"dir", dir, "reason", err)
	}
	return err
}

func (cfg Config) templateCacheDir() string {
	if cfg.TemplateCache != "" {
		return cfg.TemplateCache
	}
	return defaultTemplateCache(cfg.StoreDir)
}
