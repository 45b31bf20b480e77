package criulog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdinfo of a cgroup device program's file as Linux 6.1 shows it (what
// PID 1 held for journald's DeviceAllow= on a stock Debian 12 host).
const deviceFdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t2066\nprog_type:\t15\nprog_jited:\t1\nprog_tag:\t1f8a9c4a5d5b7ebd\nmemlock:\t4096\nprog_id:\t52\nrun_time_ns:\t0\nrun_cnt:\t0\nrecursion_misses:\t0\nverified_insns:\t24\n"

func TestParseBPFFdinfo(t *testing.T) {
	for fdinfo, want := range map[string]bpfProg{
		deviceFdinfo: {Type: 15, ID: 52},
		"pos:\t0\nflags:\t02000002\nmnt_id:\t15\nprog_type:\t8\nprog_jited:\t1\nprog_tag:\t6deef7357e7b4530\nmemlock:\t4096\nprog_id:\t7\n": {Type: 8, ID: 7},
		"pos:\t0\nflags:\t02\nmnt_id:\t24\nino:\t1\n": {Type: -1},
		"": {Type: -1},
	} {
		if got := parseBPFFdinfo(fdinfo); got != want {
			t.Errorf("parseBPFFdinfo(%q) = %+v, want %+v", fdinfo, got, want)
		}
	}
}

// TestBPFProgCauses: each program type systemd attaches is named with the
// settings that attach it and the drop-in that removes it, and the unit
// where it was found; IPAddressDeny= only for the packet filters.
func TestBPFProgCauses(t *testing.T) {
	for _, c := range []struct {
		prog      bpfProg
		unit      string
		want, not []string
	}{
		{bpfProg{Type: 15, ID: 52}, "systemd-journald.service",
			[]string{"task 1 holds a cgroup device filter (BPF program type 15", "attached to systemd-journald.service's cgroup", "DeviceAllow=", "DevicePolicy=auto", "drop-in for systemd-journald.service"},
			[]string{"IPAddress"}},
		{bpfProg{Type: 15, ID: 52}, "",
			[]string{"type 15", "DevicePolicy=auto", "for the unit that sets them"}, []string{"IPAddress", "attached to"}},
		{bpfProg{Type: 8, ID: 7}, "systemd-logind.service",
			[]string{"packet filter (BPF program type 8", "IPAddressDeny= and IPAddressAllow= empty", "systemd-logind.service"}, []string{"DevicePolicy"}},
		{bpfProg{Type: 18, ID: 9}, "", []string{"SocketBindAllow= and SocketBindDeny= empty"}, []string{"IPAddress"}},
		{bpfProg{Type: 5}, "", []string{"a BPF program of type 5", "IPAddressDeny=", "DevicePolicy=auto"}, nil},
		{bpfProg{Type: -1}, "", []string{"holds a BPF program (its descriptor 3)", "DeviceAllow="}, nil},
	} {
		got := bpfCause("task 1", "3", c.prog, c.unit)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%+v %q: %q lacks %q", c.prog, c.unit, got, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(got, n) {
				t.Errorf("%+v %q: %q names %q", c.prog, c.unit, got, n)
			}
		}
	}
}

// TestBPFProgOfALog: a real cgroup device program held by this test and
// attached to a cgroup named as a unit: the cause read from a CRIU log
// names its type (from this task's fdinfo) and the unit (from the cgroup
// it is attached to), through Explain and Blockers alike.
func TestBPFProgOfALog(t *testing.T) {
	if os.Geteuid() != 0 || cgroup2Mount() == "" {
		t.Skip("needs root and cgroup2")
	}
	base, err := os.MkdirTemp(cgroup2Mount(), "ctrfs-criulog-test-")
	if err != nil {
		t.Skip("cannot make a cgroup: ", err)
	}
	unitDir := filepath.Join(base, "system.slice", "systemd-journald.service")
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(unitDir); os.Remove(filepath.Dir(unitDir)); os.Remove(base) })
	prog := loadDeviceProg(t)
	attachProg(t, unitDir, prog)

	info := readBPFProg(fmt.Sprint(os.Getpid()), fmt.Sprint(prog))
	if info.Type != unix.BPF_PROG_TYPE_CGROUP_DEVICE || info.ID == 0 {
		t.Fatalf("fdinfo of the program: %+v", info)
	}
	if got := findProg(base, progKinds[info.Type], info.ID); got != "systemd-journald.service" {
		t.Errorf("findProg: %q", got)
	}
	log := []byte(fmt.Sprintf("(00.10) Dumping opened files (pid: %d)\n(00.11) Error (criu/files.c:557): Can't dump file %d of that type [600] (anon anon_inode:bpf-prog)\n(00.12) Error (criu/cr-dump.c:2093): Dumping FAILED.\n", os.Getpid(), prog))
	got := Explain(log)
	if b := Blockers(log); len(b) != 1 || b[0] != got {
		t.Errorf("Blockers %q, Explain %q", b, got)
	}
	for _, w := range []string{fmt.Sprintf("task %d (criulog.test", os.Getpid()), "cgroup device filter (BPF program type 15", fmt.Sprintf("descriptor %d", prog), "DevicePolicy=auto"} {
		if !strings.Contains(got, w) {
			t.Errorf("%q lacks %q", got, w)
		}
	}
}

// loadDeviceProg loads a cgroup device program that allows every device
// (r0 = 1; exit) and returns its descriptor.
func loadDeviceProg(t *testing.T) int {
	insns := []uint64{0x00000001000000b7, 0x0000000000000095} // mov r0, 1; exit
	license := []byte("GPL\x00")
	attr := struct {
		progType, insnCnt uint32
		insns, license    unsafe.Pointer
		logLevel, logSize uint32
		logBuf            uint64
		kernVersion       uint32
		progFlags         uint32
	}{progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE, insnCnt: uint32(len(insns)), insns: unsafe.Pointer(&insns[0]), license: unsafe.Pointer(&license[0])}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		t.Skip("cannot load a cgroup device program here: ", errno)
	}
	t.Cleanup(func() { unix.Close(int(fd)) })
	return int(fd)
}

// attachProg attaches it to the cgroup dir, as systemd does for a unit.
func attachProg(t *testing.T, dir string, prog int) {
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cg)
	attr := struct{ targetFd, attachBpfFd, attachType, attachFlags uint32 }{uint32(cg), uint32(prog), unix.BPF_CGROUP_DEVICE, 0}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr)); errno != 0 {
		t.Skip("cannot attach a cgroup device program here: ", errno)
	}
}
