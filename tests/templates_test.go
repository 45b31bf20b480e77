package tests

import (
	"strings"
	"testing"

	"ctrfs/internal/tree"
)

// TestTemplatesAndHostCtl: templates/ lists the templates with their info;
// the top-level ctl creates containers from a chosen template, with the
// errors and events of any other operation; mkdir still creates from the
// default template, which `serve --template` chooses.
func TestTemplatesAndHostCtl(t *testing.T) {
	d := StartDaemon(t, "dakara")
	if ls := strings.Fields(d.MustSh("ls templates")); strings.Join(ls, " ") != "busybox debian" {
		t.Fatalf("templates/ lists %v", ls)
	}
	bb := tree.ParseKV(d.Read("templates", "busybox", "info"))
	if bb["name"] != "busybox" || bb["default"] != "yes" || bb["about"] == "" || bb["size"] == "" {
		t.Errorf("templates/busybox/info:\n%v", bb)
	}
	if help := d.Read("ctl"); !strings.Contains(help, "create NAME [--template T]") {
		t.Errorf("reading ctl: %q", help)
	}

	events := d.readEvents()
	d.MustSh("echo 'create c1 --template busybox' > ctl && echo start > containers/c1/ctl")
	Count(t, d.Info("c1")["ipv4"])
	events.waitFor(t, "dakara c1 create ok")
	if conf := d.Read("containers", "c1", "config"); !strings.Contains(conf, "# ctrfs.template = busybox") {
		t.Errorf("config does not name its template:\n%s", conf)
	}

	d.ShFails("echo 'create c1' > ctl", "File exists")
	events.waitFor(t, "dakara c1 create failed")
	d.ShFails("echo 'create c2 --template nosuch' > ctl", "Invalid argument")
	d.ShFails("echo 'create c2 --template' > ctl", "Invalid argument")
	d.ShFails("echo 'create' > ctl", "Invalid argument")
	d.ShFails("echo 'create ../x' > ctl", "Invalid argument")
	d.ShFails("echo 'frobnicate c2' > ctl", "Invalid argument")
	if d.has("c2") {
		t.Error("a refused create made c2")
	}

	// mkdir and a create without --template take the default template.
	d.MustSh("mkdir containers/c3 && echo 'create c4' > ctl")
	for _, c := range []string{"c3", "c4"} {
		if conf := d.Read("containers", c, "config"); !strings.Contains(conf, "# ctrfs.template = busybox") {
			t.Errorf("%s is not of the default template:\n%s", c, conf)
		}
	}

	// serve --template chooses the default; an unknown one is refused.
	e := StartDaemon(t, "tollana", "--template", "debian")
	if info := tree.ParseKV(e.Read("templates", "debian", "info")); info["default"] != "yes" {
		t.Errorf("with --template debian, templates/debian/info:\n%v", info)
	}
	if _, _, code := runProgram(t, nil, ctrfsBin, "serve", "--template", "nosuch", "--mount", t.TempDir()); code != 2 {
		t.Errorf("serve --template nosuch exited %d, want 2", code)
	}
}
