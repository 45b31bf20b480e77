package lxcpath

import (
	"strings"
	"testing"
)

// FuzzValidateName: a name it accepts is safe as one path component, an
// LXC container name and a hostname: short, no separator, no "..", no
// leading dot or dash, only letters, digits, '-', '_' and '.'.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"c1", "a.b", "a-b_c", ".", "..", "a..b", ".x", "-x", "a/b", "a\x00b", "é",
		strings.Repeat("a", maxNameLen), strings.Repeat("a", maxNameLen+1), "", " ", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := ValidateName(name); err != nil {
			return
		}
		if name == "" || len(name) > maxNameLen || strings.Contains(name, "..") || name[0] == '.' || name[0] == '-' {
			t.Fatalf("accepted %q", name)
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				t.Fatalf("accepted %q with byte %#x", name, c)
			}
		}
	})
}
