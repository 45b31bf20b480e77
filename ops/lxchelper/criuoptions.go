package lxchelper

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A container's own CRIU options (the `criu` file of its directory), for
// what a container needs beyond what ctrfs sets, such as `enable-fs ramfs`
// for a service with a ramfs mount. One option a line, as in a CRIU config
// file (an option's long name without the dashes, then its value):
//
//	dump: OPTION       for dumps only (stop-stateful, snapshot --stateful, move, check)
//	restore: OPTION    for restores only (start with saved state, restore, a move's target)
//	OPTION             for both
//
// `#` starts a comment. The file lives in the container's LXC directory, so
// it goes with renames and moves; ctrfs's own options and these are given
// to CRIU together, in one config file.
const CriuOptionsFile = "ctrfs-criu.conf"

// CriuOptionsPath is the `criu` file of the container name.
func CriuOptionsPath(lxcpath, name string) string {
	return filepath.Join(lxcpath, name, CriuOptionsFile)
}

// ParseCriuOptions splits the file into the lines for dump and for restore.
func ParseCriuOptions(data []byte) (dump, restore []string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		forDump, forRestore := true, true
		if rest, ok := strings.CutPrefix(line, "dump:"); ok {
			line, forRestore = strings.TrimSpace(rest), false
		} else if rest, ok := strings.CutPrefix(line, "restore:"); ok {
			line, forDump = strings.TrimSpace(rest), false
		}
		if line == "" || strings.HasPrefix(line, "-") {
			return nil, nil, fmt.Errorf("line %d: want an option's name without dashes, as in `enable-fs ramfs`", n)
		}
		if forDump {
			dump = append(dump, line)
		}
		if forRestore {
			restore = append(restore, line)
		}
	}
	return dump, restore, sc.Err()
}

// readCriuOptions returns the container's options for "dump" or "restore";
// none if it has no file.
func readCriuOptions(lxcpath, name, phase string) ([]string, error) {
	data, err := os.ReadFile(CriuOptionsPath(lxcpath, name))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dump, restore, err := ParseCriuOptions(data)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", CriuOptionsFile, name, err)
	}
	if phase == "dump" {
		return dump, nil
	}
	return restore, nil
}

// CheckCriuOptions has CRIU itself read the options (it parses its config
// file even for --version), so that a misspelt option is refused when it is
// written, not at the next checkpoint.
func CheckCriuOptions(lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	conf, err := criuConfig(lines...)
	if err != nil {
		return err
	}
	defer os.Remove(conf)
	cmd := exec.Command("criu", "--version")
	cmd.Env = append(os.Environ(), "CRIU_CONFIG_FILE="+conf)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "criu: ") {
			return fmt.Errorf("CRIU refuses it: %s", strings.TrimPrefix(l, "criu: "))
		}
	}
	return fmt.Errorf("CRIU refuses it: %v", err)
}
