package criulog

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A task holding a BPF program's file fails the dump ("Can't dump file N
// of that type [600] (anon anon_inode:bpf-prog)"): in a systemd container
// it is PID 1, which attaches programs of several types to its units'
// cgroups, each for its own settings. The program's type (prog_type in
// /proc/PID/fdinfo/FD) says which settings to empty, and the cgroup it is
// attached to says for which unit: blaming IPAddressDeny= for a device
// program sent operators after the wrong setting.

// progKind is what ctrfs knows of a type of BPF program that systemd
// attaches to a unit's cgroup.
type progKind struct {
	name     string   // in an operator's words
	settings string   // the systemd settings that attach it
	fix      string   // what a drop-in for the unit sets
	attach   []uint32 // the cgroup attach types it is found under
}

var progKinds = map[int]progKind{
	unix.BPF_PROG_TYPE_CGROUP_SKB: {"a cgroup packet filter (BPF program type 8, cgroup_skb)",
		"IPAddressDeny= or IPAddressAllow= (as journald and logind have), IPAccounting=, IPIngressFilterPath=, IPEgressFilterPath= or RestrictNetworkInterfaces=",
		"IPAddressDeny= and IPAddressAllow= empty (and any of the others the unit sets)",
		[]uint32{unix.BPF_CGROUP_INET_INGRESS, unix.BPF_CGROUP_INET_EGRESS}},
	unix.BPF_PROG_TYPE_CGROUP_DEVICE: {"a cgroup device filter (BPF program type 15, cgroup_device)",
		"DeviceAllow= or DevicePolicy= (as journald's DeviceAllow=char-* rw)",
		"DeviceAllow= (empty) and DevicePolicy=auto",
		[]uint32{unix.BPF_CGROUP_DEVICE}},
	unix.BPF_PROG_TYPE_CGROUP_SOCK_ADDR: {"a cgroup socket bind filter (BPF program type 18, cgroup_sock_addr)",
		"SocketBindAllow= or SocketBindDeny=",
		"SocketBindAllow= and SocketBindDeny= empty",
		[]uint32{unix.BPF_CGROUP_INET4_BIND, unix.BPF_CGROUP_INET6_BIND}},
}

// bpfHolder finds the task whose files CRIU was dumping at a point of its
// log: the last "Dumping opened files (pid: N)" before it (the host PID).
var bpfHolder = regexp.MustCompile(`Dumping opened files \(pid: (\d+)\)`)

// explainBPFProg is the cause for a BPF program's file fd that CRIU could
// not dump, held by the task whose files it was dumping before log[at:].
func explainBPFProg(log []byte, at int, fd string) string {
	holders := bpfHolder.FindAllSubmatch(log[:at], -1)
	if len(holders) == 0 {
		return bpfCause("a task", fd, bpfProg{Type: -1}, "")
	}
	pid := string(holders[len(holders)-1][1])
	task, _ := describeTask(pid)
	prog := readBPFProg(pid, fd)
	return bpfCause(task, fd, prog, unitOfProg(pid, prog))
}

// bpfCause words the cause: what the program is, what attaches it, and
// the drop-in that removes it, for the unit when it was found.
func bpfCause(task, fd string, prog bpfProg, unit string) string {
	k, known := progKinds[prog.Type]
	if !known {
		what := "a BPF program"
		if prog.Type >= 0 {
			what = fmt.Sprintf("a BPF program of type %d", prog.Type)
		}
		return fmt.Sprintf("%s holds %s (its descriptor %s), which CRIU cannot dump: systemd attaches BPF programs to a unit's cgroup for IPAddressDeny=/IPAddressAllow= (type 8), DeviceAllow=/DevicePolicy= (type 15) and SocketBindAllow=/SocketBindDeny= (type 18); set those empty (DevicePolicy=auto) in a drop-in for the unit (`check` reads the type from /proc/PID/fdinfo while the task runs)",
			task, what, fd)
	}
	where, forUnit := "", "for the unit that sets them (systemctl edit UNIT)"
	if unit != "" {
		where = " attached to " + unit + "'s cgroup"
		forUnit = "for " + unit + " (systemctl edit " + unit + ")"
	}
	return fmt.Sprintf("%s holds %s%s (its descriptor %s), which CRIU cannot dump: systemd attaches one for %s; set %s in a drop-in %s, or in a service.d/ drop-in for every service as the debian template does",
		task, k.name, where, fd, k.settings, k.fix, forUnit)
}

// bpfProg is what /proc/PID/fdinfo/FD says of a BPF program's file.
type bpfProg struct {
	Type int    // prog_type, -1 if unknown
	ID   uint32 // prog_id, 0 if unknown
}

func readBPFProg(pid, fd string) bpfProg {
	b, err := os.ReadFile("/proc/" + pid + "/fdinfo/" + fd)
	if err != nil {
		return bpfProg{Type: -1}
	}
	return parseBPFFdinfo(string(b))
}

// parseBPFFdinfo reads prog_type and prog_id from a bpf-prog fdinfo.
func parseBPFFdinfo(fdinfo string) bpfProg {
	p := bpfProg{Type: -1}
	for _, l := range strings.Split(fdinfo, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); {
		case err != nil:
		case k == "prog_type":
			p.Type = int(n)
		case k == "prog_id":
			p.ID = uint32(n)
		}
	}
	return p
}

// unitOfProg finds the cgroup that prog is attached to among those of the
// holder's container (below the parent of the holder's cgroup2 cgroup:
// systemd runs in init.scope beside its units' cgroups) and names its
// unit, or "".
func unitOfProg(pid string, prog bpfProg) string {
	k, known := progKinds[prog.Type]
	root := cgroup2Mount()
	cgroups, _ := os.ReadFile("/proc/" + pid + "/cgroup")
	own, ok := cgroup2Path(string(cgroups))
	if !known || prog.ID == 0 || root == "" || !ok || own == "/" {
		return ""
	}
	return findProg(filepath.Join(root, path.Dir(own)), k, prog.ID)
}

// findProg names the unit of the cgroup below dir that program id of kind
// k is attached to, or "".
func findProg(dir string, k progKind, id uint32) string {
	var found string
	visited := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if visited++; visited > 4096 || found != "" {
			return filepath.SkipAll
		}
		for _, at := range k.attach {
			if attachedTo(p, at, id) {
				found = unitOfCgroups("0::" + p)
				if found == "" {
					found = "the cgroup " + p
				}
				return filepath.SkipAll
			}
		}
		return nil
	})
	return found
}

// cgroup2Path is the cgroup2 ("0::") line's path of a /proc/PID/cgroup.
func cgroup2Path(cgroups string) (string, bool) {
	for _, l := range strings.Split(cgroups, "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p, true
		}
	}
	return "", false
}

// cgroup2Mount is where cgroup2 is mounted (/sys/fs/cgroup on a
// cgroup2-only host, /sys/fs/cgroup/unified on a hybrid one), or "".
func cgroup2Mount() string {
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[2] == "cgroup2" {
			return f[1]
		}
	}
	return ""
}

// attachedTo says whether the program id is attached to the cgroup dir
// for attach type at (BPF_PROG_QUERY, which root may make).
func attachedTo(dir string, at uint32, id uint32) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var ids [64]uint32
	attr := progQueryAttr{targetFd: uint32(fd), attachType: at, progIDs: unsafe.Pointer(&ids[0]), progCnt: uint32(len(ids))}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_QUERY, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr)); errno != 0 {
		return false
	}
	for _, got := range ids[:min(attr.progCnt, uint32(len(ids)))] {
		if got == id {
			return true
		}
	}
	return false
}

// progQueryAttr is union bpf_attr's query member (linux/bpf.h). prog_ids
// is a pointer typed as one, so that the runtime keeps ids where the
// kernel writes (an __aligned_u64: this layout holds on 64-bit hosts).
type progQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     unsafe.Pointer
	progCnt     uint32
	_           uint32
}
