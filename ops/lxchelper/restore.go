package lxchelper

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	lxc "github.com/lxc/go-lxc"

	"ctrfs/ops/testhooks"
)

// restoreOptions are the arguments of the restore verbs: DIR, then
// `stream` if the daemon serves the images there (images.ServeImages),
// `lazy-pages` if CRIU's lazy-pages daemon listens there for the memory
// (ops/lazypages: served from DIR itself, or for post-copy from the
// source's page server), and `mntns-compat` for CRIU's older mount
// engine (see ops/restoremode.go).
type restoreOptions struct {
	dir    string
	stream bool
	lazy   bool
	compat bool
	// rehearsal is the cgroup of a rehearsal's copy (rehearse.go), whose
	// tasks are restored there, and frozen there before they go (see
	// freezestate.go); "" for a restore of the container itself.
	rehearsal string
}

func parseRestoreArgs(verb Verb, args []string) (restoreOptions, error) {
	if len(args) == 0 {
		return restoreOptions{}, fmt.Errorf("%s takes the image directory, then `stream`, `lazy-pages` and `mntns-compat` as needed", verb)
	}
	o := restoreOptions{dir: args[0]}
	for _, a := range args[1:] {
		switch a {
		case ArgStream:
			o.stream = true
		case ArgLazyPages:
			o.lazy = true
		case ArgMntnsCompat:
			o.compat = true
		default:
			return o, fmt.Errorf("%s: unknown argument %q", verb, a)
		}
	}
	return o, nil
}

// restoreContainer restores from CRIU images, with the options that LXC
// has none for in a config file that CRIU reads from CRIU_CONFIG_FILE: the
// mount engine, streaming, the hook that recreates recorded cgroups, and
// the container's own options.
func restoreContainer(c *lxc.Container, lxcpath string, o restoreOptions) error {
	lines := []string{criuVerbosity}
	engine := EngineMountV2
	if o.compat {
		lines = append(lines, "mntns-compat-mode")
		engine = ArgMntnsCompat
	}
	if testhooks.FailRestore(engine) {
		lines = append(lines, "action-script /bin/false")
	}
	if o.stream {
		lines = append(lines, "stream")
	}
	if o.lazy {
		lines = append(lines, ArgLazyPages)
	}
	// See cgroup2root.go.
	if o.rehearsal != "" {
		lines = append(lines, "cgroup-root :/"+o.rehearsal)
		if err := os.Setenv(cgroup2RootEnv, o.rehearsal); err != nil {
			return err
		}
	} else {
		undo, err := intoLXCsCgroup2()
		if err != nil {
			return err
		}
		defer undo()
	}
	if cgroups := filepath.Join(o.dir, CgroupsFile); fileExists(cgroups) {
		hook, err := actionScript(cgroupsHook, map[string]string{"CTRFS_CGROUPS": cgroups})
		if err != nil {
			return err
		}
		defer os.Remove(hook)
		lines = append(lines, "action-script "+hook)
	}
	if o.rehearsal != "" {
		hook, err := actionScript(freezeRestoredHook, map[string]string{"CTRFS_CGROUP": o.rehearsal})
		if err != nil {
			return err
		}
		defer os.Remove(hook)
		lines = append(lines, "action-script "+hook)
	}
	own, err := readCriuOptions(lxcpath, c.Name(), "restore")
	if err != nil {
		return err
	}
	conf, err := criuConfig(append(lines, own...)...)
	if err != nil {
		return err
	}
	defer os.Remove(conf)
	if err := os.Setenv("CRIU_CONFIG_FILE", conf); err != nil {
		return err
	}
	if err := c.Restore(lxc.RestoreOptions{Directory: o.dir}); err != nil {
		return err
	}
	if !c.Wait(lxc.RUNNING, 30*time.Second) {
		return fmt.Errorf("not running 30s after restore")
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
