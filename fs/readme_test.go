package fs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ctrfs/ops"
)

// ctlVerbs are the first words of the commands reading ctl lists.
func ctlVerbs() []string {
	var verbs []string
	for _, line := range strings.Split(strings.TrimSpace(ops.CtlHelp), "\n") {
		verbs = append(verbs, strings.Fields(line)[0])
	}
	return verbs
}

// TestHelpNamesEveryFileAndCommand: the mount's README and ctrfs(5) name
// every file of a container's directory and every ctl command, so that
// neither falls behind the tree.
func TestHelpNamesEveryFileAndCommand(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "docs", "ctrfs.5.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range append(containerEntries, containerStateEntry) {
		if !strings.Contains(readme, "    "+e.Name) {
			t.Errorf("the mount's README does not describe containers/NAME/%s", e.Name)
		}
		if !strings.Contains(string(page), "\n*"+e.Name) {
			t.Errorf("docs/ctrfs.5.md does not describe containers/NAME/%s", e.Name)
		}
	}
	for _, verb := range ctlVerbs() {
		if !strings.Contains(readme, verb) {
			t.Errorf("the mount's README does not list the ctl command %s", verb)
		}
		if !strings.Contains(string(page), "**"+verb+"**") {
			t.Errorf("docs/ctrfs.5.md does not describe the ctl command %s", verb)
		}
	}
}
