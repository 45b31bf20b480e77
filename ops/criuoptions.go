package ops

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"ctrfs/ops/configfile"
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
const criuOptionsFile = "ctrfs-criu.conf"

func criuOptionsPath(lxcpath, name string) string {
	return filepath.Join(lxcpath, name, criuOptionsFile)
}

// parseCriuOptions splits the file into the lines for dump and for restore.
func parseCriuOptions(data []byte) (dump, restore []string, err error) {
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
	data, err := os.ReadFile(criuOptionsPath(lxcpath, name))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dump, restore, err := parseCriuOptions(data)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", criuOptionsFile, name, err)
	}
	if phase == "dump" {
		return dump, nil
	}
	return restore, nil
}

// checkCriuOptions has CRIU itself read the options (it parses its config
// file even for --version), so that a misspelt option is refused when it is
// written, not at the next checkpoint.
func checkCriuOptions(lines []string) error {
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

// CriuOptions is the `criu` file: empty if the container has none.
func (m *Manager) CriuOptions(name string) ([]byte, error) {
	if !m.Exists(name) {
		return nil, newError(ErrNotFound, fmt.Sprintf("no container %q", name), nil)
	}
	b, err := os.ReadFile(criuOptionsPath(m.cfg.LXCPath, name))
	if err != nil && !os.IsNotExist(err) {
		return nil, newError(ErrFailed, "read CRIU options of "+name, err)
	}
	return b, nil
}

// SetCriuOptions replaces the `criu` file, in any state: it takes effect at
// the next dump or restore (and `check` shows its effect at once). Options
// CRIU does not know are refused and the old file stays.
func (m *Manager) SetCriuOptions(name string, data []byte) error {
	return m.run(operation{name: name, what: "criu", fn: func(*opContext) error {
		dump, restore, err := parseCriuOptions(data)
		if err == nil {
			err = checkCriuOptions(append(dump, restore...))
		}
		if err != nil {
			return newError(ErrInvalid, fmt.Sprintf("CRIU options of %s not changed: %v", name, err), nil)
		}
		path := criuOptionsPath(m.cfg.LXCPath, name)
		if len(bytes.TrimSpace(data)) == 0 {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				return newError(ErrFailed, "write CRIU options of "+name, err)
			}
			return nil
		}
		if err := configfile.WriteAtomic(path, data); err != nil {
			return newError(ErrFailed, "write CRIU options of "+name, err)
		}
		return nil
	}})
}
