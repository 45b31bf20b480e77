package ops

import (
	"fmt"
	"strings"

	"ctrfs/ops/templates"
)

// HostCommand is one parsed line written to the mount's top-level `ctl`.
type HostCommand struct {
	Verb     string
	Name     string // the container to create
	Template string // create --template; empty: the default template
	// Privilege is create's --privileged or --unprivileged ("privileged",
	// "unprivileged"); empty: DefaultPrivileged decides.
	Privilege string
	Host      string // evacuate HOST; empty: spread over the peers
}

// HostCtlHelp is what reading the top-level `ctl` shows.
const HostCtlHelp = `create NAME [--template T] [--privileged|--unprivileged]
evacuate [HOST]
`

// ParseHostCommand parses one line of the top-level ctl.
func ParseHostCommand(line string) (HostCommand, error) {
	words := strings.Fields(line)
	if len(words) == 0 {
		return HostCommand{}, newError(ErrInvalid, "empty command; read ctl for the list", nil)
	}
	cmd := HostCommand{Verb: words[0]}
	args := words[1:]
	switch cmd.Verb {
	case "create":
		usage := fmt.Sprintf("bad arguments %q; usage: create NAME [--template T] [--privileged|--unprivileged]", strings.Join(words[1:], " "))
		var rest []string
		for i := 0; i < len(args); i++ {
			a := args[i]
			switch {
			case a == "--template" && i+1 < len(args) && cmd.Template == "":
				cmd.Template = args[i+1]
				i++
			case strings.HasPrefix(a, "--template=") && cmd.Template == "":
				cmd.Template = strings.TrimPrefix(a, "--template=")
			case (a == "--privileged" || a == "--unprivileged") && cmd.Privilege == "":
				cmd.Privilege = strings.TrimPrefix(a, "--")
			default:
				rest = append(rest, a)
			}
		}
		args = rest
		if len(args) != 1 || strings.HasPrefix(args[0], "-") {
			return HostCommand{}, newError(ErrInvalid, usage, nil)
		}
		cmd.Name = args[0]
		if err := ValidateName(cmd.Name); err != nil {
			return HostCommand{}, err
		}
		if cmd.Template != "" {
			if _, err := templates.Lookup(cmd.Template); err != nil {
				return HostCommand{}, err
			}
		}
	case "evacuate":
		if len(args) > 1 || len(args) == 1 && strings.HasPrefix(args[0], "-") {
			return HostCommand{}, newError(ErrInvalid, fmt.Sprintf("bad arguments %q; usage: evacuate [HOST]", strings.Join(args, " ")), nil)
		}
		if len(args) == 1 {
			cmd.Host = args[0]
			if err := ValidateName(cmd.Host); err != nil {
				return HostCommand{}, err
			}
		}
	default:
		return HostCommand{}, newError(ErrInvalid, fmt.Sprintf("unknown command %q; read ctl for the list", cmd.Verb), nil)
	}
	return cmd, nil
}
