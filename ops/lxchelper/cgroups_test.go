package lxchelper

import "testing"

// An escape at the very end counts too: ctrfs serve's check for a mount
// point missed "/mnt/a b " (`/mnt/a\040b\040`) before it shared this one.
func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/ctrfs`:          "/mnt/ctrfs",
		`/mnt/a\040b`:         "/mnt/a b",
		`/mnt/a\040b\040`:     "/mnt/a b ",
		`/mnt/tab\011nl\012x`: "/mnt/tab\tnl\nx",
		`/mnt/back\134slash`:  `/mnt/back\slash`,
		`/mnt/odd\04`:         `/mnt/odd\04`,
	} {
		if got := UnescapeMountPath(in); got != want {
			t.Errorf("UnescapeMountPath(%q) = %q; want %q", in, got, want)
		}
	}
}
