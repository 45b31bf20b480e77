package tests

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// bugReport copies containers/NAME/bugreport out with cp, as an operator
// would, lists it with `tar tzf` and returns its files by name.
func (d *Daemon) bugReport(name string) map[string]string {
	d.t.Helper()
	out := filepath.Join(d.t.TempDir(), "report.tar.gz")
	d.MustSh("cp containers/" + name + "/bugreport " + out)
	listing := strings.Fields(d.MustSh("tar tzf " + out))
	f, err := os.Open(out)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		d.t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			d.t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			d.t.Fatal(err)
		}
		files[hdr.Name] = string(b)
	}
	if len(listing) != len(files) {
		d.t.Fatalf("tar tzf lists %v; the archive holds %d files", listing, len(files))
	}
	return files
}

// checkReport checks that report has every file with what it must say,
// and nothing secret: no image file, nothing of the store, no secret.
func checkReport(t *testing.T, report map[string]string, prefix string, want map[string]string, secret string) {
	t.Helper()
	for file, says := range want {
		got, ok := report[prefix+file]
		if !ok {
			t.Errorf("the report lacks %s%s; it has %v", prefix, file, keys(report))
			continue
		}
		if !strings.Contains(got, says) {
			t.Errorf("%s%s does not say %q:\n%s", prefix, file, says, lastN(got, 2000))
		}
	}
	for name, content := range report {
		if strings.HasSuffix(name, ".img") || strings.Contains(name, "/state/") {
			t.Errorf("the report holds an image file %s", name)
		}
		if secret != "" && strings.Contains(content, secret) {
			t.Errorf("%s holds the cluster's secret", name)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func lastN(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestBugReportFailedCheckpoint: after a checkpoint that CRIU could not
// do, bugreport holds the command and its error, info, the LXC config,
// CRIU's dump log, the container's and the host's mounts, the kernel log,
// the bridge, the versions and the daemon's log.
func TestBugReportFailedCheckpoint(t *testing.T) {
	d := StartDaemon(t, "dakara")
	d.CreateRunning("c1")
	d.failCheckpoint("c1")

	report := d.bugReport("c1")
	checkReport(t, report, "", map[string]string{
		"command":             "checkpoint of c1 failed",
		"info":                "status: RUNNING",
		"lxc-config":          "lxc.rootfs.path = " + d.LXCPath,
		"log":                 "dump.log",
		"container-mountinfo": "/c1/rootfs / ",
		"host-mountinfo":      d.Mount,
		"uname":               "Linux",
		"dmesg":               "",
		"daemon.log":          "operation failed",
		"bridge":              testBridge,
		"versions":            "criu: Version: ",
	}, "")
	if !strings.Contains(report["lxc-config"], "lxc.net.0.link = "+testBridge) {
		t.Errorf("lxc-config lacks the network:\n%s", report["lxc-config"])
	}
	if !strings.Contains(report["command"], "last-op: stop-stateful") {
		t.Errorf("command:\n%s", report["command"])
	}
	for _, key := range []string{"ctrfs:", "lxc:", "kernel:"} {
		if !strings.Contains(report["versions"], key) {
			t.Errorf("versions lack %q:\n%s", key, report["versions"])
		}
	}
	if strings.Contains(report["container-mountinfo"], "no such file") {
		t.Errorf("container-mountinfo: %s", report["container-mountinfo"])
	}
	d.MustSh("echo stop > containers/c1/ctl")
}

// TestBugReportFailedMove: after a move whose restore failed on the
// target, bugreport holds the target's report too, under peer-HOST/,
// fetched over the migration endpoint.
func TestBugReportFailedMove(t *testing.T) {
	// Printable, so that the search for it in the report means something.
	const secret = "s3cret-bugreport-that-is-long-enough"
	a := startPeer(t, "dakara", loopback(2), secret, "")
	b := startPeer(t, "tollana", loopback(3), secret, a.Addr, fakeCRIU(t, "", true))
	a.waitHosts("dakara", "tollana")
	a.CreateRunning("c1")
	a.ShFails("mv containers/c1 hosts/tollana/", "Input/output error")

	report := a.bugReport("c1")
	checkReport(t, report, "", map[string]string{
		"command":    "move of c1 to tollana failed",
		"info":       "status: RUNNING",
		"daemon.log": "operation failed",
	}, secret)
	checkReport(t, report, "peer-tollana/", map[string]string{
		"command":        "tollana could not take c1",
		"log":            "injected restore failure",
		"uname":          "Linux",
		"host-mountinfo": b.Mount,
		"daemon.log":     "restore of an incoming container failed",
		"bridge":         testBridge,
		"versions":       "criu:",
		"dmesg":          "",
	}, secret)
	if _, ok := report["peer-tollana/error"]; ok {
		t.Errorf("the peer's report could not be had: %s", report["peer-tollana/error"])
	}
	if !strings.Contains(report["peer-tollana/command"], "host: tollana") {
		t.Errorf("peer-tollana/command is not the target's:\n%s", report["peer-tollana/command"])
	}
	a.MustSh("echo stop > containers/c1/ctl")
}

// TestBugReportUnpacksPrivate (issue 18, item 6): root's `tar xzf` of a
// bug report (with a target's part, after a failed move) leaves every file
// 0600 and every directory 0700, so that another user reads none of the
// config and logs; its README says what each file holds.
func TestBugReportUnpacksPrivate(t *testing.T) {
	secret := newSecret(t)
	a := startPeer(t, "dakara", loopback(2), secret, "")
	startPeer(t, "tollana", loopback(3), secret, a.Addr, fakeCRIU(t, "", true))
	a.waitHosts("dakara", "tollana")
	a.CreateRunning("c1")
	a.ShFails("mv containers/c1 hosts/tollana/", "Input/output error")
	uid := probeUser(t)

	// A directory another user may enter, as /tmp or a home is.
	dir, err := os.MkdirTemp("", "ctrfs-report-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a.MustSh("umask 022 && cp containers/c1/bugreport " + dir + "/r.tar.gz && tar xzf " + dir + "/r.tar.gz -C " + dir + " && rm " + dir + "/r.tar.gz")

	readme, err := os.ReadFile(filepath.Join(dir, "README"))
	if err != nil {
		t.Errorf("the report has no README: %v", err)
	}
	var files []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = os.ModeDir | 0o700
		} else {
			files = append(files, rel)
		}
		if fi.Mode() != want {
			t.Errorf("%s unpacks as %v; want %v", rel, fi.Mode(), want)
		}
		if rel != "README" && !fi.IsDir() && !strings.Contains(string(readme), rel+"\n") {
			t.Errorf("README does not say what %s holds:\n%s", rel, readme)
		}
		return nil
	})
	for _, f := range []string{"lxc-config", "log", "peer-tollana/log"} {
		if !slices.Contains(files, f) {
			t.Errorf("the report lacks %s: %v", f, files)
		}
	}
	for _, f := range []string{"lxc-config", "log", "daemon.log", "peer-tollana/command"} {
		if out, err := a.asUser(uid, "cat "+filepath.Join(dir, f)); err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("another user reads %s of the unpacked report: %v: %s", f, err, lastN(out, 200))
		}
	}
	if !strings.Contains(string(readme), "0600") {
		t.Errorf("README does not say the files are root's alone:\n%s", readme)
	}
	a.MustSh("echo stop > containers/c1/ctl")
}
