package cluster

import (
	"fmt"

	"ctrfs/ops"
)

// This file is the one command router: every line written to a `ctl` is
// parsed here, once, and sent to whoever carries it out. fs only forwards
// the line and maps the error to an errno. It lives in cluster, above ops,
// because a command is either this host's (ops.Manager) or a move between
// hosts (Migrate, Evacuate); a host without a cluster (no --bind or
// secret) routes the same way, and its moves fail as Migrate and Evacuate
// make them fail when there are no peers.

// Dispatch carries out one line written to containers/NAME/ctl. A line
// that does not parse is recorded as a failed command of the container, so
// that its `error` and `events` show it like any other.
func (c *Cluster) Dispatch(container, line string) error {
	cmd, err := ops.ParseCommand(line)
	if err != nil {
		c.m.RecordFailure(container, line, err)
		return err
	}
	switch {
	case cmd.Verb == "move" && cmd.PostCopy:
		return c.MigratePostCopy(container, cmd.Arg)
	case cmd.Verb == "move" && cmd.FullDumps:
		return c.MigrateFullDumps(container, cmd.Arg)
	case cmd.Verb == "move":
		return c.Migrate(container, cmd.Arg)
	}
	return c.m.Run(container, cmd)
}

// DispatchHost carries out one line written to the mount's top-level ctl.
// Its outcome is the caller's to record: the top-level `error` belongs to
// the tree, which records a mkdir's create there too.
func (c *Cluster) DispatchHost(line string) error {
	cmd, err := ops.ParseHostCommand(line)
	if err != nil {
		return err
	}
	switch cmd.Verb {
	case "evacuate":
		return c.Evacuate(cmd.Host)
	case "create":
		return c.m.CreateWith(cmd.Name, ops.CreateOptions{Template: cmd.Template, Privilege: cmd.Privilege})
	}
	// Only a verb added to ParseHostCommand and not routed here.
	return ops.NewError(ops.ErrInvalid, fmt.Sprintf("unknown command %q; read ctl for the list", cmd.Verb))
}
