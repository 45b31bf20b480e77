package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// What `make deps` may not do to a host (issue 11): move it to Debian
// unstable or testing. Checked on the machine the tests run on, after deps.

// debianReleases maps the codenames this check knows to their version.
// A suite named after a release newer than the host's is as bad as sid.
var debianReleases = map[string]int{
	"buster": 10, "bullseye": 11, "bookworm": 12, "trixie": 13, "forky": 14, "duke": 15,
}

// Suites that are unstable or testing whatever the host runs.
var moving = map[string]bool{
	"sid": true, "unstable": true, "testing": true, "experimental": true, "rc-buggy": true,
}

func TestSetupStaysOnRelease(t *testing.T) {
	osr := hostRelease(t)
	id, _ := strconv.Atoi(osr["VERSION_ID"])
	if want, ok := debianReleases[osr["VERSION_CODENAME"]]; !ok || want != id {
		t.Errorf("/etc/os-release: VERSION_CODENAME=%q VERSION_ID=%q: not a Debian release",
			osr["VERSION_CODENAME"], osr["VERSION_ID"])
	}
	bf := dpkgVersion(t, "base-files")
	if major, _, _ := strings.Cut(bf, "."); major != osr["VERSION_ID"] {
		t.Errorf("base-files %s is not release %s's: it came from another release", bf, osr["VERSION_ID"])
	}
}

func TestSetupNoForeignAptSource(t *testing.T) {
	osr := hostRelease(t)
	files, err := aptSourceFiles("/etc/apt")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sourceSuites(f, string(b)) {
			if suiteTooNew(s, osr["VERSION_CODENAME"]) {
				t.Errorf("%s names suite %q: newer than this host's %s", f, s, osr["VERSION_CODENAME"])
			}
		}
	}
}

func TestSetupNoPackageNewerThanRelease(t *testing.T) {
	list, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${binary:Package}\t${Maintainer}\n").Output()
	if err != nil {
		t.Fatal("dpkg-query:", err)
	}
	var names []string
	maintainer := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 && strings.HasPrefix(f[0], "ii") {
			names = append(names, f[1])
			maintainer[policyName(f[1])] = f[2]
		}
	}
	// One call for all: apt prints each package's versions newest first.
	out, err := exec.Command("apt-cache", append([]string{"policy"}, names...)...).Output()
	if err != nil {
		t.Fatal("apt-cache policy:", err)
	}
	policies := parsePolicy(string(out))
	if len(policies) < len(names) {
		t.Fatalf("apt-cache policy answered for %d of %d installed packages", len(policies), len(names))
	}
	osr := hostRelease(t)
	for _, problem := range fromElsewhere(policies, maintainer, osr["VERSION_ID"]) {
		t.Error(problem)
	}
}

// fromElsewhere names the installed Debian packages that this host's apt
// sources do not offer in that version or newer: they came from another
// (newer) release. maintainer maps package to its Maintainer field.
func fromElsewhere(policies map[string]aptPolicy, maintainer map[string]string, release string) []string {
	// Who maintains what the archive offers: a package of theirs that no
	// source offers came from another Debian release, not from a third party.
	debianMaintainers := map[string]bool{}
	known := 0
	for name, p := range policies {
		if p.verdict() == "ok" {
			debianMaintainers[maintainer[name]] = true
			known++
		}
	}
	if known == 0 {
		return []string{"no installed package is offered by any apt source: run apt-get update first"}
	}
	var problems []string
	for name, p := range policies {
		verdict := p.verdict()
		m := maintainer[name]
		debian := debianMaintainers[m] || strings.Contains(strings.ToLower(m), "debian")
		if verdict == "ok" || builtForRelease(p.Installed, release) || !debian {
			continue // offered here, our CRIU, a backport, a vendor's package
		}
		if verdict == "newer" {
			problems = append(problems, fmt.Sprintf("%s %s is newer than anything this host's apt sources offer (best: %s)", name, p.Installed, p.best()))
		} else {
			problems = append(problems, fmt.Sprintf("%s %s (maintainer %s) is a Debian package that no apt source of this host offers", name, p.Installed, m))
		}
	}
	sort.Strings(problems)
	return problems
}

// builtForRelease says whether a version no configured source offers was
// made for this host's release anyway: our local CRIU build (~local12+1),
// a backport (~bpo12+1), a stable update (+deb12u3).
func builtForRelease(version, release string) bool {
	return strings.Contains(version, "~local") || strings.Contains(version, "~bpo"+release) ||
		strings.Contains(version, "deb"+release+"u")
}

// aptSourceFiles lists the files apt reads sources from: sources.list and,
// in sources.list.d, *.list and *.sources (apt ignores other names).
func aptSourceFiles(etc string) ([]string, error) {
	var files []string
	if _, err := os.Stat(filepath.Join(etc, "sources.list")); err == nil {
		files = append(files, filepath.Join(etc, "sources.list"))
	}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, err := filepath.Glob(filepath.Join(etc, "sources.list.d", pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	return files, nil
}

// sourceSuites returns the suites an apt source file names, in the one-line
// format (*.list) or deb822 (*.sources), skipping comments and paragraphs
// with "Enabled: no".
func sourceSuites(name, text string) []string {
	var suites []string
	if strings.HasSuffix(name, ".sources") {
		for _, para := range strings.Split(text, "\n\n") {
			fields := map[string]string{}
			key := ""
			for _, line := range strings.Split(para, "\n") {
				switch {
				case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
				case line[0] == ' ' || line[0] == '\t':
					if key != "" {
						fields[key] += " " + strings.TrimSpace(line)
					}
				default:
					k, v, _ := strings.Cut(line, ":")
					key = strings.ToLower(strings.TrimSpace(k))
					fields[key] = strings.TrimSpace(v)
				}
			}
			if strings.EqualFold(fields["enabled"], "no") {
				continue
			}
			suites = append(suites, strings.Fields(fields["suites"])...)
		}
		return suites
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "deb" && f[0] != "deb-src") {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // [arch=amd64 signed-by=...]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			f = f[1:]
		}
		if len(f) >= 2 {
			suites = append(suites, f[1])
		}
	}
	return suites
}

// suiteTooNew: sid, unstable, testing, experimental, or a release newer than
// host (bookworm-backports and bookworm-security are the host's own).
func suiteTooNew(suite, host string) bool {
	base := strings.FieldsFunc(suite, func(r rune) bool { return r == '-' || r == '/' })
	if len(base) == 0 {
		return false
	}
	if moving[base[0]] {
		return true
	}
	n, ok := debianReleases[base[0]]
	return ok && n > debianReleases[host]
}

// aptPolicy is one package in `apt-cache policy` output.
type aptPolicy struct {
	Installed string
	Versions  []aptVersion // newest first, as apt prints them
}

type aptVersion struct {
	Version string
	Sources []string // "500 http://deb.debian.org/debian bookworm/main amd64 Packages", "100 /var/lib/dpkg/status"
}

// fromArchive says whether some configured source offers this version (the
// dpkg status file is not a source).
func (v aptVersion) fromArchive() bool {
	for _, s := range v.Sources {
		if !strings.HasSuffix(s, "/var/lib/dpkg/status") {
			return true
		}
	}
	return false
}

// best is the newest version a configured source offers, "" if none does.
func (p aptPolicy) best() string {
	for _, v := range p.Versions {
		if v.fromArchive() {
			return v.Version
		}
	}
	return ""
}

// verdict: "ok" when the installed version is offered or older than the best
// offered, "newer" when it is above all that the sources offer (it came
// from a newer release), "unknown" when no source offers the package.
func (p aptPolicy) verdict() string {
	if p.best() == "" {
		return "unknown"
	}
	for _, v := range p.Versions {
		if v.fromArchive() {
			return "ok" // reached the best offered before the installed one
		}
		if v.Version == p.Installed {
			return "newer"
		}
	}
	return "ok"
}

// policyName is the name apt-cache policy prints for a dpkg binary:Package
// (native packages without their architecture).
func policyName(binaryPackage string) string {
	name, arch, ok := strings.Cut(binaryPackage, ":")
	if ok && arch == nativeArch() {
		return name
	}
	return binaryPackage
}

var nativeArchCache string

func nativeArch() string {
	if nativeArchCache == "" {
		out, _ := exec.Command("dpkg", "--print-architecture").Output()
		nativeArchCache = strings.TrimSpace(string(out))
	}
	return nativeArchCache
}

// parsePolicy reads `apt-cache policy PKG...` output.
func parsePolicy(out string) map[string]aptPolicy {
	res := map[string]aptPolicy{}
	var name string
	var cur *aptPolicy
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		indent := len(line) - len(strings.TrimLeft(line, " "))
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case indent == 0:
			if cur != nil {
				res[name] = *cur
			}
			name, cur = strings.TrimSuffix(line, ":"), &aptPolicy{}
		case cur == nil:
		case indent == 2 && f[0] == "Installed:":
			cur.Installed = f[1]
		case indent == 1 && f[0] == "***" && len(f) >= 2: // the installed version
			cur.Versions = append(cur.Versions, aptVersion{Version: f[1]})
		case indent == 5:
			cur.Versions = append(cur.Versions, aptVersion{Version: f[0]})
		case indent >= 8 && len(cur.Versions) > 0:
			v := &cur.Versions[len(cur.Versions)-1]
			v.Sources = append(v.Sources, strings.TrimSpace(line))
		}
	}
	if cur != nil {
		res[name] = *cur
	}
	return res
}

// hostRelease reads /etc/os-release.
func hostRelease(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	return kv
}

func dpkgVersion(t *testing.T, pkg string) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		t.Fatalf("dpkg-query %s: %v", pkg, err)
	}
	return strings.TrimSpace(string(out))
}

// cannedPolicy is `apt-cache policy` on a bookworm host that took libc6 and
// base-files from sid, next to packages that may be there.
const cannedPolicy = `libc6:
  Installed: 2.43-1
  Candidate: 2.43-1
  Version table:
 *** 2.43-1 100
        100 /var/lib/dpkg/status
     2.36-9+deb12u14 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     2.36-9+deb12u7 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
base-files:
  Installed: 14.2
  Candidate: 14.2
  Version table:
 *** 14.2 100
        100 /var/lib/dpkg/status
     12.4+deb12u11 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
libssl3t64:
  Installed: 3.5.4-1
  Candidate: 3.5.4-1
  Version table:
 *** 3.5.4-1 100
        100 /var/lib/dpkg/status
bash:
  Installed: 5.2.15-2+b8
  Candidate: 5.2.15-2+b13
  Version table:
     5.2.15-2+b13 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
 *** 5.2.15-2+b8 100
        100 /var/lib/dpkg/status
adduser:
  Installed: 3.134
  Candidate: 3.134
  Version table:
 *** 3.134 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
criu:
  Installed: 4.2.1-0~local12+1
  Candidate: 4.2.1-0~local12+1
  Version table:
 *** 4.2.1-0~local12+1 100
        100 /var/lib/dpkg/status
     3.17.1-2+deb12u2 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
golang-go:
  Installed: 2:1.23~2~bpo12+1
  Candidate: 2:1.19~1
  Version table:
 *** 2:1.23~2~bpo12+1 100
        100 /var/lib/dpkg/status
     2:1.19~1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
nodejs:
  Installed: 20.20.2-1nodesource1+repack1
  Candidate: 20.20.2-1nodesource1+repack1
  Version table:
 *** 20.20.2-1nodesource1+repack1 100
        100 /var/lib/dpkg/status
     18.20.4+dfsg-1~deb12u3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
google-cloud-cli:
  Installed: 528.0.0-0
  Candidate: 528.0.0-0
  Version table:
 *** 528.0.0-0 100
        100 /var/lib/dpkg/status
`

func TestSetupCheckFindsSidPackages(t *testing.T) {
	maintainer := map[string]string{
		"libc6":            "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
		"base-files":       "Santiago Vila <sanvila@debian.org>",
		"libssl3t64":       "Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>",
		"bash":             "Matthias Klose <doko@debian.org>",
		"adduser":          "Debian Adduser Developers <adduser@packages.debian.org>",
		"criu":             "ctrfs local build <root@localhost>",
		"golang-go":        "Debian Go Compiler Team <team+go-compiler@tracker.debian.org>",
		"nodejs":           "NodeSource Support <support@nodesource.com>",
		"google-cloud-cli": "Google Cloud CLI Authors <https://code.google.com/p/google-cloud-sdk/>",
	}
	policies := parsePolicy(cannedPolicy)
	if len(policies) != len(maintainer) {
		t.Fatalf("parsed %d packages, want %d: %+v", len(policies), len(maintainer), policies)
	}
	if p := policies["libc6"]; p.Installed != "2.43-1" || p.best() != "2.36-9+deb12u14" || p.verdict() != "newer" {
		t.Errorf("libc6: installed %q best %q verdict %q", p.Installed, p.best(), p.verdict())
	}
	got := strings.Join(fromElsewhere(policies, maintainer, "12"), "\n")
	want := strings.Join([]string{
		"base-files 14.2 is newer than anything this host's apt sources offer (best: 12.4+deb12u11)",
		"libc6 2.43-1 is newer than anything this host's apt sources offer (best: 2.36-9+deb12u14)",
		"libssl3t64 3.5.4-1 (maintainer Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>) is a Debian package that no apt source of this host offers",
	}, "\n")
	if got != want {
		t.Errorf("found:\n%s\nwant:\n%s", got, want)
	}
}

func TestSetupCheckFindsSidSources(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"ctrfs-sid.sources", "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: sid\nComponents: main\n", []string{"sid"}},
		{"debian.sources", "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://deb.debian.org/debian\n" +
			"Suites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites:\n trixie\n testing\n",
			[]string{"trixie", "testing"}},
		{"off.sources", "Enabled: no\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites: unstable\n", nil},
		{"sources.list", "# deb http://deb.debian.org/debian sid main\ndeb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian unstable main\n" +
			"deb-src http://deb.debian.org/debian bookworm-backports main\ndeb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n",
			[]string{"unstable"}},
	} {
		var bad []string
		for _, s := range sourceSuites(c.name, c.text) {
			if suiteTooNew(s, "bookworm") {
				bad = append(bad, s)
			}
		}
		if strings.Join(bad, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: flagged %q, want %q", c.name, bad, c.want)
		}
	}
	if suiteTooNew("trixie-backports", "trixie") || !suiteTooNew("forky", "trixie") {
		t.Error("trixie host: trixie-backports is its own, forky is newer")
	}
}
