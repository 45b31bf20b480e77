package ops_test

import (
	"fmt"

	"ctrfs/ops"
)

// The grammar of a container's ctl, which cluster.Dispatch parses with
// ParseCommand before it routes the command.
func ExampleParseCommand() {
	cmd, err := ops.ParseCommand("move tollana --post-copy\n")
	fmt.Printf("%s: verb %s, host %s, post-copy %v, %v\n", cmd, cmd.Verb, cmd.Arg, cmd.PostCopy, err)
	_, err = ops.ParseCommand("snapshot\n")
	fmt.Println(err)
	_, err = ops.ParseCommand("launch c1\n")
	fmt.Println(err)
	// Output:
	// move tollana --post-copy: verb move, host tollana, post-copy true, <nil>
	// bad arguments ""; usage: snapshot NAME [--stateful]
	// unknown command "launch"; read ctl for the list
}

// The grammar of the top-level ctl, which cluster.DispatchHost parses.
func ExampleParseHostCommand() {
	cmd, err := ops.ParseHostCommand("create web1 --template busybox\n")
	fmt.Printf("%+v %v\n", cmd, err)
	cmd, err = ops.ParseHostCommand("evacuate\n")
	fmt.Printf("%+v %v\n", cmd, err)
	// Output:
	// {Verb:create Name:web1 Template:busybox Privilege: Host:} <nil>
	// {Verb:evacuate Name: Template: Privilege: Host:} <nil>
}
