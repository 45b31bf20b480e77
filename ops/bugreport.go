package ops

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	lxc "github.com/lxc/go-lxc"
)

// ReportFile is one file of a bug report (the `bugreport` tar.gz).
type ReportFile struct {
	Name string
	Data []byte
}

// reportFileLimit bounds each file of a report; longer ones keep their
// end, where a log says what went wrong.
const reportFileLimit = 1 << 20

// dmesgLines is how much of the kernel's log a report keeps.
const dmesgLines = 300

// BugReportFiles gathers what a CRIU or LXC bug report about a container
// needs: the last command and its error, info, the expanded LXC config,
// the last CRIU/LXC log, the container's mounts while it runs, and this
// host's kernel, mounts, kernel log, bridge, versions and the daemon's
// recent log lines. It holds nothing secret: no memory images, no files of
// the store, no key. It works for a name that is not (or no longer) a
// container here too, as a migration's target is asked after a failed move.
func (m *Manager) BugReportFiles(name string) []ReportFile {
	var files []ReportFile
	add := func(file string, data []byte) {
		files = append(files, ReportFile{file, tail(data, reportFileLimit)})
	}
	r, _ := m.ledger.get(name)
	last := fmt.Sprintf("host: %s\ncontainer: %s\nlast-op: %s\nlast-op-seconds: %.3f\nerror: %s\n",
		m.cfg.Host, name, r.lastOp, r.lastOpDur.Seconds(), r.lastErr)
	log := r.log
	add("command", []byte(last))
	add("log", log)
	if kv, err := m.Info(name); err == nil {
		add("info", FormatInfo(kv))
		add("lxc-config", expandedConfig(m.cfg.LXCPath, name))
		if pid := infoValue(kv, "pid"); pid != "" {
			add("container-mountinfo", readOrError("/proc/"+pid+"/mountinfo"))
		}
	} else {
		add("info", []byte(err.Error()+"\n"))
	}
	add("uname", command("uname", "-a"))
	add("host-mountinfo", readOrError("/proc/self/mountinfo"))
	add("dmesg", lastLines(command("dmesg"), dmesgLines))
	add("daemon.log", m.cfg.RecentLog.Bytes())
	br := m.cfg.Network.Bridge
	add("bridge", bytes.Join([][]byte{
		command("ip", "-d", "link", "show", br),
		command("ip", "addr", "show", br),
		command("bridge", "link"),
	}, nil))
	add("versions", versions())
	return files
}

// Modes of a report's members: root's `tar xzf` keeps them, and what the
// report holds (the config, logs) is root's alone, as in the tree.
const (
	reportFileMode = 0o600
	reportDirMode  = 0o700
)

// BugReportArchive packs report files into a tar.gz, after a README that
// says what each holds. Every directory (peer-HOST/) has a member of its
// own ahead of its files, so that tar does not make it with the umask's
// mode.
func BugReportArchive(files []ReportFile) ([]byte, error) {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	now := time.Now()
	files = append([]ReportFile{{"README", reportReadme(files)}}, files...)
	dirs := map[string]bool{}
	for _, f := range files {
		for _, dir := range parentDirs(f.Name) {
			if dirs[dir] {
				continue
			}
			dirs[dir] = true
			hdr := &tar.Header{Name: dir + "/", Mode: reportDirMode, ModTime: now, Typeflag: tar.TypeDir}
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, newError(ErrFailed, "write bug report", err)
			}
		}
		hdr := &tar.Header{Name: f.Name, Mode: reportFileMode, Size: int64(len(f.Data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, newError(ErrFailed, "write bug report", err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, newError(ErrFailed, "write bug report", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, newError(ErrFailed, "write bug report", err)
	}
	if err := gz.Close(); err != nil {
		return nil, newError(ErrFailed, "write bug report", err)
	}
	return b.Bytes(), nil
}

// parentDirs are the directories of a member's name, outermost first.
func parentDirs(name string) []string {
	var out []string
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		out = append([]string{dir}, out...)
	}
	return out
}

// expandedConfig is the config as LXC loaded it, includes expanded: every
// key LXC knows with its value.
func expandedConfig(lxcPath, name string) []byte {
	c, err := lxc.NewContainer(name, lxcPath)
	if err != nil {
		return []byte(err.Error() + "\n")
	}
	defer c.Release()
	keys := c.ConfigKeys()
	// The network's keys are per interface: lxc.net.N.KEY (LXC answers
	// an empty value past the last one; the bound is only a guard).
	for i := 0; i < 64; i++ {
		prefix := fmt.Sprintf("lxc.net.%d", i)
		sub := c.ConfigKeys(prefix)
		if strings.Join(c.ConfigItem(prefix+".type"), "") == "" {
			break
		}
		for _, k := range sub {
			keys = append(keys, prefix+"."+k)
		}
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		for _, v := range c.ConfigItem(k) {
			if v != "" && k != "lxc.net" {
				fmt.Fprintf(&b, "%s = %s\n", k, v)
			}
		}
	}
	return b.Bytes()
}

// versions is the report's `versions`: ctrfs's as `ctrfs version` shows
// it, then CRIU's, LXC's and the kernel's.
func versions() []byte {
	criu := strings.TrimSpace(string(command("criu", "--version")))
	kernel := strings.TrimSpace(string(command("uname", "-r")))
	return fmt.Appendf(nil, "ctrfs: %s (%s)\ncriu: %s\nlxc: %s\nkernel: %s\n",
		Version(), runtime.Version(), strings.ReplaceAll(criu, "\n", "; "), lxc.Version(), kernel)
}

// command is a command's output, or its error in words: a report says
// what it could not find.
func command(name string, args ...string) []byte {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		out = append(out, fmt.Sprintf("(%s %s: %v)\n", name, strings.Join(args, " "), err)...)
	}
	return out
}

func readOrError(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return []byte(err.Error() + "\n")
	}
	return b
}

func infoValue(kv []KeyValue, key string) string {
	for _, p := range kv {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// tail keeps the last limit bytes of b, from a line start.
func tail(b []byte, limit int) []byte {
	if len(b) <= limit {
		return b
	}
	b = b[len(b)-limit:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

func lastLines(b []byte, n int) []byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > n+1 {
		lines = lines[len(lines)-n-1:]
	}
	return bytes.Join(lines, nil)
}

// LastOp is the container's last operation and whether it failed.
func (m *Manager) LastOp(name string) (op string, failed bool) {
	r, _ := m.ledger.get(name)
	return r.lastOp, r.lastErr != ""
}
