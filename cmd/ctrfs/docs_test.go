package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ctrfs/fs"
	"ctrfs/internal/testenv"
)

// TestManPagesBuild: both man pages build from docs/ with go-md2man (what
// `make man` runs), into roff with a title line.
func TestManPagesBuild(t *testing.T) {
	md2man := testenv.NeedTool(t, "go-md2man", "make deps installs it")
	for _, page := range []string{"ctrfs.5", "ctrfs.8"} {
		out := filepath.Join(t.TempDir(), page)
		cmd := exec.Command(md2man, "-in", filepath.Join("..", "..", "docs", page+".md"), "-out", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go-md2man %s: %v\n%s", page, err, b)
		}
		roff, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		section := strings.TrimPrefix(filepath.Ext(page), ".")
		if !strings.Contains(string(roff), ".TH ctrfs "+section+" ") {
			t.Errorf("%s has no title line .TH ctrfs %s:\n%.300s", page, section, roff)
		}
	}
}

// TestManPageNamesEveryFlag: ctrfs(8) documents every flag of `ctrfs serve`
// and every command, so that the page cannot drift from
// the code.
func TestManPageNamesEveryFlag(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "ctrfs.8.md"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	serveFlagSet(&serveFlags{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(page, "**--"+f.Name+"**") {
			t.Errorf("docs/ctrfs.8.md does not document `ctrfs serve --%s`", f.Name)
		}
	})
	for _, cmd := range []string{"serve", "probe", "version", "help"} {
		if !strings.Contains(page, "**"+cmd) {
			t.Errorf("docs/ctrfs.8.md does not document `ctrfs %s`", cmd)
		}
		if !strings.Contains(usage, "ctrfs "+cmd) {
			t.Errorf("`ctrfs help` does not list %s", cmd)
		}
	}
}

// TestManPageNamesReservedNames: ctrfs(5) lists every name a container may
// not take, as the tree has them.
func TestManPageNamesReservedNames(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "ctrfs.5.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range fs.ReservedNames() {
		if !strings.Contains(string(b), "**"+name+"**") {
			t.Errorf("docs/ctrfs.5.md does not list %q among the names a container may not take", name)
		}
	}
}
