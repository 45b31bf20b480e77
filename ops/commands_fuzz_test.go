package ops

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseCommand: no line written to ctl crashes the parser; a line it
// accepts has a known verb and a valid name, and prints back to itself.
func FuzzParseCommand(f *testing.F) {
	for _, line := range strings.Split(CtlHelp, "\n") {
		f.Add(strings.NewReplacer("NAME", "s1", "HOST", "tollana").Replace(line) + "\n")
		f.Add(line)
	}
	for _, s := range []string{"", " ", "\n", "snapshot s1 --stateful\n", "snapshot --stateful s1", "snapshot ../x",
		"move a b", "restore \x00", "start\tnow", "snapshot " + strings.Repeat("a", 64), "restore .hidden", "restore -x",
		"snapshot s1 --stateful --stateful", "move h\u00e9", "\xff\xfe"} {
		f.Add(s)
	}
	verbs := map[string]bool{"start": true, "stop": true, "stop-stateful": true, "restart": true,
		"freeze": true, "unfreeze": true, "snapshot": true, "restore": true, "move": true, "check": true, "convert": true}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := ParseCommand(line)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q: %v is not EINVAL", line, err)
			}
			return
		}
		if !verbs[cmd.Verb] {
			t.Fatalf("%q: accepted unknown verb %q", line, cmd.Verb)
		}
		if cmd.Arg != "" {
			if err := ValidateName(cmd.Arg); err != nil {
				t.Fatalf("%q: accepted invalid name %q: %v", line, cmd.Arg, err)
			}
		}
		again, err := ParseCommand(cmd.String())
		if err != nil || again != cmd {
			t.Fatalf("%q parsed to %+v, which prints as %q and parses to %+v, %v", line, cmd, cmd.String(), again, err)
		}
	})
}
