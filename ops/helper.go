package ops

import (
	"fmt"
	"os"
	"time"

	lxc "github.com/lxc/go-lxc"
)

// HelperMain is `ctrfs lxc-helper VERB LXCPATH NAME LOGFILE [ARGS…]`: the LXC
// calls that fork a long-lived monitor, run in a short-lived process of
// their own (see Config.HelperPath). It returns the exit code.
func HelperMain(args []string) int {
	if len(args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs lxc-helper VERB LXCPATH NAME LOGFILE [ARGS…]")
		return 2
	}
	verb, lxcpath, name, logFile, rest := args[0], args[1], args[2], args[3], args[4:]
	c, err := lxc.NewContainer(name, lxcpath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Release()
	c.SetLogFile(logFile)
	c.SetLogLevel(lxc.INFO)
	c.WantCloseAllFds(true)
	switch verb {
	case "start":
		err = c.Start()
		if err == nil && !c.Wait(lxc.RUNNING, 30*time.Second) {
			err = fmt.Errorf("not running 30s after start")
		}
	case "checkpoint":
		if len(rest) != 1 {
			err = fmt.Errorf("checkpoint takes the image directory")
			break
		}
		err = c.Checkpoint(lxc.CheckpointOptions{Directory: rest[0], Stop: true})
	case "checkpoint-running":
		if len(rest) != 1 {
			err = fmt.Errorf("checkpoint-running takes the image directory")
			break
		}
		err = c.Checkpoint(lxc.CheckpointOptions{Directory: rest[0], Stop: false})
	case "restore":
		if len(rest) != 1 {
			err = fmt.Errorf("restore takes the image directory")
			break
		}
		err = restoreContainer(c, rest[0])
	default:
		err = fmt.Errorf("unknown helper verb %q", verb)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// restoreContainer restores from CRIU images in dir. CRIU's mount-v2 engine
// fails on the template's read-only bind mounts, so the restore (and only
// the restore: dump rejects the option) runs in mntns-compat-mode, through a
// config file that CRIU reads from CRIU_CONFIG_FILE.
func restoreContainer(c *lxc.Container, dir string) error {
	conf, err := os.CreateTemp("", "ctrfs-criu-*.conf")
	if err != nil {
		return err
	}
	defer os.Remove(conf.Name())
	if _, err := conf.WriteString("mntns-compat-mode\n"); err != nil {
		return err
	}
	if err := conf.Close(); err != nil {
		return err
	}
	if err := os.Setenv("CRIU_CONFIG_FILE", conf.Name()); err != nil {
		return err
	}
	if err := c.Restore(lxc.RestoreOptions{Directory: dir}); err != nil {
		return err
	}
	if !c.Wait(lxc.RUNNING, 30*time.Second) {
		return fmt.Errorf("not running 30s after restore")
	}
	return nil
}
