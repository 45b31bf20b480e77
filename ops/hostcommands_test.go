package ops

import (
	"errors"
	"testing"
)

func TestParseHostCommand(t *testing.T) {
	good := map[string]HostCommand{
		"create c1\n":                              {Verb: "create", Name: "c1"},
		"create c1 --template debian":              {Verb: "create", Name: "c1", Template: "debian"},
		"create c1 --template=busybox":             {Verb: "create", Name: "c1", Template: "busybox"},
		"create c1 --unprivileged":                 {Verb: "create", Name: "c1", Privilege: "unprivileged"},
		"create c1 --privileged --template debian": {Verb: "create", Name: "c1", Template: "debian", Privilege: "privileged"},
		"evacuate\n":                               {Verb: "evacuate"},
		"evacuate peer1":                           {Verb: "evacuate", Host: "peer1"},
	}
	for line, want := range good {
		if got, err := ParseHostCommand(line); err != nil || got != want {
			t.Errorf("%q: %+v, %v", line, got, err)
		}
	}
	for _, line := range []string{"", "create", "create c1 c2", "create c1 --template", "create c1 --template nosuch",
		"create --template debian", "create c1 --privileged --unprivileged", "create c1 --privileged --privileged",
		"create c1 --template busybox --template debian", "create c1 --root", "create .x", "evict c1",
		"evacuate a b", "evacuate --all", "evacuate ../x"} {
		if _, err := ParseHostCommand(line); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", line, err)
		}
	}
}
