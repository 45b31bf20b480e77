package members

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"ctrfs/images"
	"ctrfs/ops/idmap"
	"ctrfs/ops/lazypages"
	"ctrfs/ops/testhooks"
)

// Facts are what a host must know about another before it sends it a
// container: CRIU restores only on the same architecture, with the CPU
// features the processes may use, and with a kernel and CRIU that
// understand the images.
type Facts struct {
	Host     string
	Endpoint string // migration endpoint, host:port
	Arch     string
	Kernel   string
	CRIU     string
	LXC      string
	CPUFlags []string // sorted
	// Features are the kernel features a restore may need that this host
	// has (restoreFeatures, sorted). FeaturesKnown is false from a ctrfs
	// that did not report them (gob sends no empty list, so it cannot say
	// "none"), which CanTake then judges by kernel version alone.
	Features      []string
	FeaturesKnown bool
	// MemAvailable is /proc/meminfo's MemAvailable in bytes when the facts
	// were asked for (Host.Facts reads it afresh): where evacuate spreads
	// containers. 0 if unknown.
	MemAvailable int64
	// StoreFormat is the newest image store format the host reads
	// (images.StoreFormat); 0 from a ctrfs before store format 2, which
	// cannot read the BLAKE3-named chunks this one stores.
	StoreFormat int
	// RootIDs are root's subordinate id ranges (/etc/subuid, /etc/subgid),
	// which must hold an unprivileged container's map for the host to
	// take it (CanHold). RootIDsKnown is false from a ctrfs before
	// unprivileged containers, which did not report them.
	RootIDs      idmap.Ranges
	RootIDsKnown bool
	// NoUnprivilegedLazyPages says why a post-copy move of an
	// unprivileged container cannot come here (lazypages.InUserNamespace),
	// "" if it can. An older ctrfs says nothing, but CanHold refuses it
	// unprivileged containers first.
	NoUnprivilegedLazyPages string
	// Storage is how the host keeps new containers' rootfs
	// (ops/storage.Kind): "btrfs" receives a rootfs as btrfs send
	// streams from a host whose rootfs is a subvolume. "" from a ctrfs
	// before storage backends, which takes archives only.
	Storage string
}

// LocalFacts describes this machine.
func LocalFacts(host, endpoint, lxcVersion string) Facts {
	f := Facts{Host: host, Endpoint: endpoint, Arch: runtime.GOARCH, LXC: lxcVersion, CRIU: criuVersion(),
		StoreFormat: images.StoreFormat}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		f.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	f.CPUFlags = cpuFlags()
	f.Features, f.FeaturesKnown = kernelFeatures(), true
	f.Kernel, f.Features = testhooks.Kernel(f.Kernel, f.Features)
	f.RootIDs, f.RootIDsKnown = RootIDs()
	f.NoUnprivilegedLazyPages = NoUnprivilegedLazyPages()
	return f
}

// NoUnprivilegedLazyPages is Facts.NoUnprivilegedLazyPages, read afresh:
// it follows a sysctl and the criu on PATH.
func NoUnprivilegedLazyPages() string {
	if err := lazypages.InUserNamespace(); err != nil {
		return err.Error()
	}
	return ""
}

// RootIDs are root's subordinate id ranges on this host, read afresh (an
// operator may add one while the daemon runs); known is false if the
// files cannot be read.
func RootIDs() (rs idmap.Ranges, known bool) {
	u, g := testhooks.SubIDFiles(idmap.HostFiles.UID, idmap.HostFiles.GID)
	rs, err := idmap.Files{UID: u, GID: g}.RootRanges()
	return rs, err == nil
}

// CanHold says why a host with facts target cannot take an unprivileged
// container with map m, or nil if it can: the container's rootfs is
// owned by host ids m's, and it keeps its map, so the target's root must
// have a range over them (else those ids may be another user's there).
func CanHold(target Facts, m idmap.Map) error {
	if !target.RootIDsKnown {
		return fmt.Errorf("it is unprivileged (id map %s) and %s runs an older ctrfs, or one that cannot read /etc/subuid and /etc/subgid, which does not say which ids root may map there (upgrade ctrfs on %s)",
			m, target.Host, target.Host)
	}
	if err := target.RootIDs.Holds(m); err != nil {
		return fmt.Errorf("it is unprivileged (id map %s) and on %s %v", m, target.Host, err)
	}
	return nil
}

// MemAvailable is the memory that can be had without swapping, in bytes
// (/proc/meminfo's MemAvailable), or 0 if unknown.
func MemAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib << 10
		}
	}
	return 0
}

func criuVersion() string {
	out, err := exec.Command("criu", "--version").Output()
	if err != nil {
		return ""
	}
	if m := regexp.MustCompile(`Version:\s*(\S+)`).FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}

// cpuFlags are the first CPU's feature flags from /proc/cpuinfo.
func cpuFlags() []string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		k = strings.TrimSpace(k)
		if ok && (k == "flags" || k == "Features") {
			flags := strings.Fields(v)
			sort.Strings(flags)
			return flags
		}
	}
	return nil
}

// CPUDigest names the set of CPU flags in a few bytes: node metadata is
// limited to 512 bytes, so peers gossip the digest and fetch the full list
// from the endpoint when they need it.
func (f Facts) CPUDigest() string {
	sum := sha256.Sum256([]byte(strings.Join(f.CPUFlags, " ")))
	return hex.EncodeToString(sum[:8])
}

// CanTake says why a host with facts target cannot restore a container
// checkpointed on a host with facts source, or nil if it can.
func CanTake(source, target Facts) error {
	if source.Arch != target.Arch {
		return fmt.Errorf("architecture: %s is %s, %s is %s", target.Host, target.Arch, source.Host, source.Arch)
	}
	if missing := missingFeatures(usedFlags(source.Arch, source.CPUFlags), target.CPUFlags); len(missing) > 0 {
		return fmt.Errorf("%s lacks CPU features of %s: %s", target.Host, source.Host, strings.Join(missing, " "))
	}
	// A move to an older kernel is the way back after an upgrade: what
	// matters is whether the target's kernel has what a restore of the
	// source's dump may use. A peer that does not report its features
	// (an older ctrfs) is judged as before, by version.
	if !target.FeaturesKnown || !source.FeaturesKnown {
		if compareVersions(target.Kernel, source.Kernel) < 0 {
			return fmt.Errorf("%s runs kernel %s, older than %s's %s, and does not say which kernel features it has (upgrade ctrfs on %s)",
				target.Host, target.Kernel, source.Host, source.Kernel, target.Host)
		}
	} else if missing := missingFeatures(source.Features, target.Features); len(missing) > 0 {
		return fmt.Errorf("%s's kernel %s lacks what a restore of a dump made on %s's %s may use (criu check --feature): %s",
			target.Host, target.Kernel, source.Host, source.Kernel, strings.Join(missing, " "))
	}
	if compareVersions(target.CRIU, source.CRIU) < 0 {
		return fmt.Errorf("%s has CRIU %q, older than %s's %s", target.Host, target.CRIU, source.Host, source.CRIU)
	}
	// The images go as stored: a target must read the chunk names the
	// source writes. An older ctrfs would refuse the manifests halfway
	// through the precopy; this says why before anything is sent.
	if target.StoreFormat < source.StoreFormat {
		return fmt.Errorf("%s runs an older ctrfs whose image store (format %d) cannot read %s's (format %d): upgrade ctrfs on %s",
			target.Host, target.StoreFormat, source.Host, source.StoreFormat, target.Host)
	}
	return nil
}

// compareVersions compares the leading dotted numbers of two versions
// ("6.18.44-fc-v782" is 6.18.44).
func compareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func versionParts(v string) []int {
	m := regexp.MustCompile(`^\d+(\.\d+)*`).FindString(v)
	var out []int
	for _, p := range strings.Split(m, ".") {
		if n, err := strconv.Atoi(p); err == nil {
			out = append(out, n)
		}
	}
	return out
}
