package manifest

import "testing"

// Only "parent/" may name a directory in a manifest from another host.
func TestChainNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"pages-1.img": true, "parent/pages-1.img": true, "parent/parent/pagemap-1.img": true,
		"parent/": false, "parent/../x": false, "other/pages-1.img": false, "parent//x": false,
		"/parent/x": false, "parent/..": false,
	} {
		if validPathName(name) != ok {
			t.Errorf("validPathName(%q) = %v, want %v", name, !ok, ok)
		}
	}
}
