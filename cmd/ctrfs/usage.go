package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// newFlagSet makes a command's flag set that prints nothing by itself:
// parseFlags prints errors and the usage, with flags in the form operators
// type them (--mount, where the flag package would print -mount).
func newFlagSet(name string) *flag.FlagSet {
	set := flag.NewFlagSet(name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	set.Usage = func() {}
	return set
}

// parseFlags parses a command's arguments; check, if not nil, judges the
// arguments left after the flags. When stop is true the command ends with
// the exit code: 0 after --help (the usage on stdout), 2 after a bad flag or
// argument (the error and the usage on stderr).
func parseFlags(set *flag.FlagSet, head string, args []string, check func(rest []string) error) (code int, stop bool) {
	err := set.Parse(args)
	if err == nil && check != nil {
		err = check(set.Args())
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(os.Stdout, head, set)
		return 0, true
	case err != nil:
		fmt.Fprintf(os.Stderr, "ctrfs %s: %s\n\n", set.Name(), dashes(err.Error()))
		printUsage(os.Stderr, head, set)
		return 2, true
	}
	return 0, false
}

// noArgs is a check for commands that take flags only.
func noArgs(rest []string) error {
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	return nil
}

// dashes rewrites the flag package's "-name" in its error messages to the
// "--name" of the usage.
var dashes = strings.NewReplacer("not defined: -", "not defined: --",
	"needs an argument: -", "needs an argument: --", "for flag -", "for flag --").Replace

// printUsage prints head, then every flag as `--name VALUE` with its help
// and default.
func printUsage(w io.Writer, head string, set *flag.FlagSet) {
	fmt.Fprint(w, head)
	fmt.Fprintln(w, "\nflags:")
	set.VisitAll(func(f *flag.Flag) {
		value, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if value != "" {
			line += " " + value
		}
		fmt.Fprintf(w, "%s\n        %s", line, strings.ReplaceAll(help, "\n", "\n        "))
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
