package ops

import (
	"strings"
	"testing"
)

// The Makefile's version (-ldflags -X ctrfs/ops.buildVersion) is what a
// bug report names; it named only what the build recorded before.
func TestBugReportNamesTheBuildVersion(t *testing.T) {
	defer func(v string) { buildVersion = v }(buildVersion)
	buildVersion = "v1.2-3-gabcdef-dirty"
	if got := string(versions()); !strings.HasPrefix(got, "ctrfs: v1.2-3-gabcdef-dirty (go") {
		t.Fatalf("versions:\n%s", got)
	}
	buildVersion = ""
	if Version() == "" {
		t.Fatal("no version without the Makefile's")
	}
}
