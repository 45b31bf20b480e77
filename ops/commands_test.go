package ops

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCommandValid(t *testing.T) {
	tests := []struct {
		line string
		want Command
	}{
		// Every verb of docs/ctrfs.5.md's ctl table.
		{"start", Command{Verb: "start"}},
		{"stop", Command{Verb: "stop"}},
		{"stop-stateful", Command{Verb: "stop-stateful"}},
		{"restart", Command{Verb: "restart"}},
		{"freeze", Command{Verb: "freeze"}},
		{"unfreeze", Command{Verb: "unfreeze"}},
		{"snapshot s1", Command{Verb: "snapshot", Arg: "s1"}},
		{"snapshot s1 --stateful", Command{Verb: "snapshot", Arg: "s1", Stateful: true}},
		{"restore s1", Command{Verb: "restore", Arg: "s1"}},
		{"move tollana", Command{Verb: "move", Arg: "tollana"}},
		{"move tollana --post-copy", Command{Verb: "move", Arg: "tollana", PostCopy: true}},
		{"move tollana --full-dumps", Command{Verb: "move", Arg: "tollana", FullDumps: true}},

		// What `echo … > ctl` and friends write: a trailing newline, and
		// stray whitespace around and between the words.
		{"start\n", Command{Verb: "start"}},
		{"stop-stateful\n", Command{Verb: "stop-stateful"}},
		{"stop\r\n", Command{Verb: "stop"}},
		{"  freeze  \n", Command{Verb: "freeze"}},
		{"unfreeze\n\n", Command{Verb: "unfreeze"}},
		{"snapshot first\n", Command{Verb: "snapshot", Arg: "first"}},
		{"snapshot first --stateful\n", Command{Verb: "snapshot", Arg: "first", Stateful: true}},
		{"snapshot   first    --stateful  \n", Command{Verb: "snapshot", Arg: "first", Stateful: true}},
		{"restore first \n", Command{Verb: "restore", Arg: "first"}},
		{"move tollana\n", Command{Verb: "move", Arg: "tollana"}},
		{"move\ttollana\n", Command{Verb: "move", Arg: "tollana"}},

		// Names that ValidateName accepts pass through unchanged.
		{"snapshot before-upgrade_2.1\n", Command{Verb: "snapshot", Arg: "before-upgrade_2.1"}},
		{"restore S1\n", Command{Verb: "restore", Arg: "S1"}},
		{"move host-2.example\n", Command{Verb: "move", Arg: "host-2.example"}},
	}
	for _, tt := range tests {
		got, err := ParseCommand(tt.line)
		if err != nil {
			t.Errorf("ParseCommand(%q): unexpected error %v", tt.line, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseCommandInvalid(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"empty", ""},
		{"only newline", "\n"},
		{"only spaces", "   \n"},
		{"unknown verb", "launch\n"},
		{"unknown verb with arg", "delete c1\n"},
		{"verbs are case-sensitive", "START\n"},
		{"verb with a typo", "stop_stateful\n"},
		{"--stateful is not a verb", "--stateful\n"},
		{"mv is an fs operation, not a command", "mv tollana\n"},

		// Verbs that take no arguments.
		{"start with arg", "start now\n"},
		{"stop with arg", "stop c1\n"},
		{"stop-stateful with arg", "stop-stateful s1\n"},
		{"restart with arg", "restart 5\n"},
		{"freeze with arg", "freeze all\n"},
		{"unfreeze with arg", "unfreeze all\n"},
		{"stop with --stateful", "stop --stateful\n"},

		// snapshot NAME [--stateful]
		{"snapshot without name", "snapshot\n"},
		{"snapshot with only --stateful", "snapshot --stateful\n"},
		{"snapshot with flag first", "snapshot --stateful s1\n"},
		{"snapshot with two names", "snapshot s1 s2\n"},
		{"snapshot with flag twice", "snapshot s1 --stateful --stateful\n"},
		{"snapshot with unknown flag", "snapshot s1 --live\n"},
		{"snapshot with short flag", "snapshot s1 -s\n"},
		{"snapshot with extra after flag", "snapshot s1 --stateful x\n"},
		{"snapshot with bad name", "snapshot ../x\n"},
		{"snapshot with slash in name", "snapshot a/b\n"},
		{"snapshot with dot name", "snapshot .hidden\n"},

		// restore NAME
		{"restore without name", "restore\n"},
		{"restore with two names", "restore s1 s2\n"},
		{"restore with --stateful", "restore s1 --stateful\n"},
		{"restore with bad name", "restore ..\n"},

		// move HOST
		{"move without host", "move\n"},
		{"move with two hosts", "move a b\n"},
		{"move with an unknown flag", "move a --pre-copy\n"},
		{"move with the flag first", "move --post-copy a\n"},
		{"move post-copy with whole dumps", "move a --post-copy --full-dumps\n"},
		{"move with bad host", "move host/x\n"},
		{"move to dotdot", "move ..\n"},
	}
	for _, tt := range tests {
		got, err := ParseCommand(tt.line)
		if err == nil {
			t.Errorf("%s: ParseCommand(%q) = %+v, want an error", tt.name, tt.line, got)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseCommand(%q) error %v does not wrap ErrInvalid", tt.name, tt.line, err)
		}
		for _, other := range []error{ErrNotFound, ErrExists, ErrBusy, ErrUnsupported, ErrUnreachable, ErrFailed, ErrDenied} {
			if errors.Is(err, other) {
				t.Errorf("%s: ParseCommand(%q) error %v is also %v", tt.name, tt.line, err, other)
			}
		}
		if got != (Command{}) {
			t.Errorf("%s: ParseCommand(%q) returned %+v along with its error", tt.name, tt.line, got)
		}
		if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
			t.Errorf("%s: ParseCommand(%q) error message %q is not one readable line", tt.name, tt.line, msg)
		}
	}
}

// The message goes to the `error` file: it should name what was wrong.
func TestParseCommandErrorMessages(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{"launch\n", `"launch"`},
		{"snapshot\n", "snapshot NAME [--stateful]"},
		{"restore a b\n", "restore NAME"},
		{"move\n", "move HOST [--post-copy | --full-dumps]"},
		{"start now\n", `"now"`},
		{"snapshot a/b\n", `"a/b"`},
	}
	for _, tt := range tests {
		_, err := ParseCommand(tt.line)
		if err == nil {
			t.Errorf("ParseCommand(%q): no error", tt.line)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCommand(%q) error %q does not mention %s", tt.line, err, tt.want)
		}
	}
}

func TestCommandStringRoundTrip(t *testing.T) {
	cmds := []Command{
		{Verb: "start"},
		{Verb: "stop-stateful"},
		{Verb: "snapshot", Arg: "s1"},
		{Verb: "snapshot", Arg: "s1", Stateful: true},
		{Verb: "restore", Arg: "s1"},
		{Verb: "move", Arg: "tollana"},
	}
	want := []string{"start", "stop-stateful", "snapshot s1", "snapshot s1 --stateful", "restore s1", "move tollana"}
	for i, c := range cmds {
		if s := c.String(); s != want[i] {
			t.Errorf("%+v.String() = %q, want %q", c, s, want[i])
		}
		back, err := ParseCommand(c.String() + "\n")
		if err != nil || back != c {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v", c.String(), back, err, c)
		}
	}
}

// Reading ctl lists the commands it takes: every line of CtlHelp, with its
// placeholders filled in, must parse, and every verb must be listed.
func TestCtlHelpMatchesParser(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(CtlHelp, "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		l = strings.NewReplacer("NAME", "n1", "HOST", "h1").Replace(l)
		variants := []string{l}
		for _, flags := range []string{"--stateful", "--post-copy | --full-dumps"} {
			if opt := " [" + flags + "]"; strings.Contains(l, opt) {
				variants = []string{strings.Replace(l, opt, "", 1)}
				for _, flag := range strings.Split(flags, " | ") {
					variants = append(variants, strings.Replace(l, opt, " "+flag, 1))
				}
			}
		}
		for _, v := range variants {
			c, err := ParseCommand(v + "\n")
			if err != nil {
				t.Errorf("CtlHelp line %q does not parse: %v", v, err)
				continue
			}
			seen[c.Verb] = true
		}
	}
	for _, verb := range []string{"start", "stop", "stop-stateful", "restart", "freeze", "unfreeze", "snapshot", "restore", "move", "check"} {
		if !seen[verb] {
			t.Errorf("CtlHelp does not list %q", verb)
		}
	}
	if !strings.HasSuffix(CtlHelp, "\n") {
		t.Errorf("CtlHelp does not end in a newline")
	}
}
