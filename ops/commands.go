package ops

import (
	"fmt"
	"strings"
)

// Command is one parsed line written to `ctl`.
type Command struct {
	Verb     string
	Arg      string // snapshot name, or host for move
	Stateful bool   // snapshot --stateful
	PostCopy bool   // move --post-copy
	// FullDumps is move --full-dumps: precopy rounds of whole dumps even
	// where CRIU could pre-dump, to compare the two on the same hosts.
	FullDumps bool
}

func (c Command) String() string {
	s := c.Verb
	if c.Arg != "" {
		s += " " + c.Arg
	}
	if c.Stateful {
		s += " --stateful"
	}
	if c.PostCopy {
		s += " --post-copy"
	}
	if c.FullDumps {
		s += " --full-dumps"
	}
	return s
}

// CtlHelp is what reading `ctl` shows.
const CtlHelp = `start
stop
stop-stateful
restart
freeze
unfreeze
snapshot NAME [--stateful]
restore NAME
move HOST [--post-copy | --full-dumps]
check
convert
`

// KnownVerb tells whether w is the first word of one of CtlHelp's commands.
func KnownVerb(w string) bool {
	for _, line := range strings.Split(CtlHelp, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == w {
			return true
		}
	}
	return false
}

// ParseCommand parses one ctl line. A trailing newline is fine; words are
// separated by spaces.
func ParseCommand(line string) (Command, error) {
	words := strings.Fields(line)
	if len(words) == 0 {
		return Command{}, newError(ErrInvalid, "empty command; read ctl for the list", nil)
	}
	cmd := Command{Verb: words[0]}
	args := words[1:]
	wrongArgs := func(usage string) (Command, error) {
		return Command{}, newError(ErrInvalid, fmt.Sprintf("bad arguments %q; usage: %s", strings.Join(args, " "), usage), nil)
	}
	switch cmd.Verb {
	case "start", "stop", "stop-stateful", "restart", "freeze", "unfreeze", "check", "convert":
		if len(args) != 0 {
			return wrongArgs(cmd.Verb)
		}
	case "snapshot":
		if len(args) == 2 && args[1] == "--stateful" {
			cmd.Stateful = true
			args = args[:1]
		}
		if len(args) != 1 {
			return wrongArgs("snapshot NAME [--stateful]")
		}
		cmd.Arg = args[0]
	case "restore":
		if len(args) != 1 {
			return wrongArgs("restore NAME")
		}
		cmd.Arg = args[0]
	case "move":
		if len(args) == 2 && args[1] == "--post-copy" {
			cmd.PostCopy = true
			args = args[:1]
		}
		if len(args) == 2 && args[1] == "--full-dumps" {
			cmd.FullDumps = true
			args = args[:1]
		}
		if len(args) != 1 {
			return wrongArgs("move HOST [--post-copy | --full-dumps]")
		}
		cmd.Arg = args[0]
	default:
		return Command{}, newError(ErrInvalid, fmt.Sprintf("unknown command %q; read ctl for the list", cmd.Verb), nil)
	}
	if cmd.Arg != "" {
		if err := ValidateName(cmd.Arg); err != nil {
			return Command{}, err
		}
	}
	return cmd, nil
}
