package lxchelper

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// criuOnPath puts first on PATH, for the restore this helper runs, a
// criu that runs script (sh, with LXC's arguments as "$@") and then the
// criu that PATH named before, and returns what undoes that. LXC runs
// criu from PATH with arguments that no config file can change; what it
// decides just before (the cgroups it made) is known only to that criu.
func criuOnPath(why, script string) (undo func(), err error) {
	real, err := exec.LookPath("criu")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ctrfs-criu-")
	if err != nil {
		return nil, err
	}
	body := "#!/bin/sh\n# ctrfs: " + why + "\n" + script +
		"exec '" + strings.ReplaceAll(real, "'", `'\''`) + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "criu"), []byte(body), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	old := os.Getenv("PATH")
	if err := os.Setenv("PATH", dir+string(os.PathListSeparator)+old); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return func() {
		os.Setenv("PATH", old)
		os.RemoveAll(dir)
	}, nil
}
