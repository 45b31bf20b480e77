package images

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ctrfs/images/chunking"
	"ctrfs/images/manifest"
)

// FuzzManifestLoad: no bytes in a manifest file crash Load, and a manifest
// it accepts cannot make Export write outside its directory or a reader
// index past a chunk: every file name is one path component, every chunk
// a valid hash of a bounded size, and the sizes add up.
func FuzzManifestLoad(f *testing.F) {
	valid, _ := json.Marshal(&Manifest{Version: manifest.Newest, Created: time.Unix(0, 0).UTC(),
		Files: []File{{Name: "pages-1.img", Size: 3, Mode: 0o600, Chunks: []Chunk{{Hash: strings.Repeat("ab", 32), Size: 3}}}},
		Meta:  map[string]string{"kind": "stateful"}})
	f.Add(valid)
	for _, s := range []string{"", "{", "null", "[]", `{"version":1}`, `{"version":2,"files":[]}`,
		`{"version":1,"files":[{"name":"../x","size":0}]}`,
		`{"version":1,"files":[{"name":"a","size":1,"chunks":[{"hash":"zz","size":1}]}]}`,
		`{"version":1,"files":[{"name":"a","size":-1,"chunks":[]}]}`,
		`{"version":1,"files":[{"name":"a","size":0},{"name":"a","size":0}]}`} {
		f.Add([]byte(s))
	}
	s, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	path := s.manifestPath("fuzz/m")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := s.Load("fuzz/m")
		if err != nil {
			return
		}
		for _, file := range m.Files {
			if file.Name == "" || file.Name == "." || file.Name == ".." || strings.ContainsAny(file.Name, "/\x00") {
				t.Fatalf("accepted file name %q", file.Name)
			}
			var sum int64
			for _, c := range file.Chunks {
				if !chunking.ValidHash(c.Hash) || c.Size <= 0 || c.Size > chunking.MaxDecoded {
					t.Fatalf("accepted chunk %+v", c)
				}
				sum += c.Size
			}
			if sum != file.Size {
				t.Fatalf("accepted %s of size %d whose chunks add up to %d", file.Name, file.Size, sum)
			}
		}
	})
}
