package ops

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestBugReportArchive: root's `tar xzf` must leave the report root's
// alone: every file is 0600, every directory 0700 and ahead of its files
// (else tar makes it with the umask's mode); README comes first and says
// what every file holds.
func TestBugReportArchive(t *testing.T) {
	m := managerWith(t)
	files := append(m.BugReportFiles("c1"),
		ReportFile{"lxc-config", []byte("lxc.environment = TOKEN=x\n")},
		ReportFile{"container-mountinfo", nil},
		ReportFile{"peer-tollana/log", []byte("restore failed\n")},
		ReportFile{"peer-tollana/error", nil})
	data, err := BugReportArchive(files)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	readme := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if hdr.Mode != 0o700 {
				t.Errorf("directory %s is %o; want 0700", hdr.Name, hdr.Mode)
			}
		case tar.TypeReg:
			if hdr.Mode != 0o600 {
				t.Errorf("%s is %o; want 0600", hdr.Name, hdr.Mode)
			}
			if hdr.Name == "README" {
				b, _ := io.ReadAll(tr)
				readme = string(b)
			}
		default:
			t.Errorf("%s is of type %c", hdr.Name, hdr.Typeflag)
		}
	}
	if len(names) == 0 || names[0] != "README" {
		t.Fatalf("README is not the first member: %v", names)
	}
	if i, j := slices.Index(names, "peer-tollana/"), slices.Index(names, "peer-tollana/log"); i < 0 || i > j {
		t.Errorf("peer-tollana/ is not ahead of its files: %v", names)
	}
	for _, f := range files {
		if !strings.Contains(readme, f.Name+"\n    ") {
			t.Errorf("README does not list %s:\n%s", f.Name, readme)
		}
	}
	for _, want := range []string{"0600", "lxc-config", "from tollana, the target of the failed move"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README does not say %q:\n%s", want, readme)
		}
	}
	if strings.Contains(readme, "(not described)") {
		t.Errorf("README has a file it does not describe:\n%s", readme)
	}
}
