package templates

import (
	"os"
	"path/filepath"
	"strings"
)

// defaultDebianMirror is used when the host's apt sources name none.
const defaultDebianMirror = "http://deb.debian.org/debian"

// hostDebianMirror is the URI of the Debian archive that the host's apt
// uses: templates are built from the mirror the operator already chose
// (and can reach).
func hostDebianMirror() string {
	if data, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources"); err == nil {
		if uri := mirrorFromDeb822(string(data)); uri != "" {
			return uri
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, p := range append([]string{"/etc/apt/sources.list"}, lists...) {
		if data, err := os.ReadFile(p); err == nil {
			if uri := mirrorFromList(string(data)); uri != "" {
				return uri
			}
		}
	}
	return defaultDebianMirror
}

// mirrorFromDeb822 picks the first URI of a deb822 sources file whose
// stanza has binary packages ("Types: deb") of a main suite (not
// -security, -updates or -backports).
func mirrorFromDeb822(s string) string {
	for _, stanza := range strings.Split(s, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if fields["enabled"] == "no" || !hasWord(fields["types"], "deb") {
			continue
		}
		if !hasMainSuite(strings.Fields(fields["suites"])) {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 {
			return strings.TrimSuffix(uris[0], "/")
		}
	}
	return ""
}

// mirrorFromList picks the URI of the first one-line `deb URI SUITE …`
// entry of a main suite.
func mirrorFromList(s string) string {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options: [arch=amd64 signed-by=…]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && hasMainSuite(f[1:2]) {
			return strings.TrimSuffix(f[0], "/")
		}
	}
	return ""
}

func hasMainSuite(suites []string) bool {
	for _, s := range suites {
		if !strings.ContainsAny(s, "-/") {
			return true
		}
	}
	return false
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
