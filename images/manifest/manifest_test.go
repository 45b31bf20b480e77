package manifest

import "testing"

// Only keeps the accepted files in order, and its copy can be changed
// without changing the manifest it came from.
func TestManifestOnly(t *testing.T) {
	m := &Manifest{Version: 2, Meta: map[string]string{"kind": "stateful"},
		Files: []File{{Name: "a", Size: 1}, {Name: "b", Size: 2}, {Name: "c", Size: 3}}}
	part := m.Only(func(f File) bool { return f.Name != "b" })
	if len(part.Files) != 2 || part.Files[0].Name != "a" || part.Files[1].Name != "c" || part.Version != 2 || part.Meta["kind"] != "stateful" {
		t.Fatalf("Only: %+v", part)
	}
	part.Files[0].Name, part.Meta["kind"] = "x", "stateless"
	if m.Files[0].Name != "a" || m.Meta["kind"] != "stateful" || len(m.Files) != 3 {
		t.Fatalf("the manifest changed with its part: %+v", m)
	}
}
