package lxcpath

import (
	"errors"
	"strings"
	"testing"

	"ctrfs/ops/errkind"
)

func TestValidateNameGood(t *testing.T) {
	good := []string{
		"c1",
		"a",
		"1",
		"first",
		"Web-Server_2",
		"db.example",
		"v1.2.3",
		"a-",
		"a_",
		"a.",
		"_underscore-first",
		"0leading-digit",
		strings.Repeat("x", 63),
	}
	for _, name := range good {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
}

func TestValidateNameBad(t *testing.T) {
	bad := []struct {
		why, name string
	}{
		{"empty", ""},
		{"dot", "."},
		{"dotdot", ".."},
		{"dotdot inside", "a..b"},
		{"dotdot prefix", "..a"},
		{"dotdot suffix", "a.."},
		{"leading dot", ".hidden"},
		{"leading dash", "-rf"},
		{"leading dash as a flag", "--stateful"},
		{"slash", "a/b"},
		{"only slash", "/"},
		{"absolute path", "/etc"},
		{"path traversal", "../etc"},
		{"trailing slash", "c1/"},
		{"too long", strings.Repeat("x", 64)},
		{"far too long", strings.Repeat("ab", 200)},
		{"space", "a b"},
		{"tab", "a\tb"},
		{"newline", "c1\n"},
		{"NUL", "a\x00b"},
		{"colon", "a:b"},
		{"star", "a*"},
		{"question mark", "a?"},
		{"dollar", "$HOME"},
		{"quote", `a"b`},
		{"backslash", `a\b`},
		{"at", "user@host"},
		{"plus", "a+b"},
		{"non-ASCII letter", "caf\u00e9"},
		{"non-ASCII digit", "c\u0661"},
		{"invalid UTF-8", "a\xffb"},
	}
	for _, tt := range bad {
		err := ValidateName(tt.name)
		if err == nil {
			t.Errorf("%s: ValidateName(%q) = nil, want an error", tt.why, tt.name)
			continue
		}
		if !errors.Is(err, errkind.ErrInvalid) {
			t.Errorf("%s: ValidateName(%q) = %v, does not wrap ErrInvalid", tt.why, tt.name, err)
		}
		if msg := err.Error(); msg == "" {
			t.Errorf("%s: ValidateName(%q) has an empty message", tt.why, tt.name)
		}
	}
}

// The length limit counts bytes, so a 63-byte name passes and anything
// longer fails whatever it is made of.
func TestValidateNameLengthBoundary(t *testing.T) {
	for n := 60; n <= 66; n++ {
		err := ValidateName(strings.Repeat("a", n))
		if ok := err == nil; ok != (n <= maxNameLen) {
			t.Errorf("ValidateName(%d×'a') = %v", n, err)
		}
	}
}
