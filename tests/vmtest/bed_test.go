//go:build vmtest

// Package vmtest is the end-to-end suite of the two-VM test bed (`make
// vmtest`, docs/vmtest.md): two stock Debian 12 VMs, A on bookworm's
// kernel and B on bookworm-backports', each running ctrfs.service as
// installed by `make install`. Everything is driven from this host over
// ssh; the VMs' containers are reached directly on the bed's container
// segment, as a client would. It builds only with -tags vmtest, so that
// `go vet ./...` and `make test` leave it alone; scripts/vmtest/run.sh
// brings the bed up first.
package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ctrfs/internal/tree"
)

// VM is one of the bed's two hosts.
type VM struct {
	ID   string // A or B, as scripts/vmtest/vm.sh names it
	Name string // its hostname and ctrfs --name
	Addr string // its management address (ssh, gossip, migration)
}

var (
	vmA = &VM{ID: "A", Name: "vma", Addr: "10.213.0.11"}
	vmB = &VM{ID: "B", Name: "vmb", Addr: "10.213.0.12"}
)

// Every wait has a deadline, generous: the VMs run under software
// emulation on a machine that others share.
const (
	shTimeout   = 20 * time.Minute // one command in a VM (a move, a template build)
	bootTimeout = 15 * time.Minute // a killed VM booting again, its daemon mounted
)

func scripts() string {
	if d := os.Getenv("VMTEST_SCRIPTS"); d != "" {
		return d
	}
	d, _ := filepath.Abs("../../scripts/vmtest")
	return d
}

func sshKey() string {
	if k := os.Getenv("VMTEST_KEY"); k != "" {
		return k
	}
	return "/var/cache/ctrfs/vm/id_ed25519"
}

func (v *VM) sshArgs(remote string) []string {
	return []string{"-i", sshKey(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15",
		"-o", "ServerAliveCountMax=8", "-o", "BatchMode=yes", "root@" + v.Addr, remote}
}

// Run runs a shell command in the VM (in / ), returning its output.
func (v *VM) Run(cmd string) (string, error) { return v.RunWithin(cmd, shTimeout) }

// RunWithin is Run with a deadline of its own, for a command known to
// take longer than shTimeout under emulation (a move of 1 GiB of memory).
func (v *VM) RunWithin(cmd string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	c := exec.CommandContext(ctx, "ssh", v.sshArgs(cmd)...)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: no answer after %s", v.Name, timeout)
	}
	return strings.TrimSpace(out.String()), err
}

// Sh runs a shell command in the VM's ctrfs mount.
func (v *VM) Sh(cmd string) (string, error) { return v.Run("cd /mnt/ctrfs && " + cmd) }

func (v *VM) MustSh(t *testing.T, cmd string) string {
	t.Helper()
	out, err := v.Sh(cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v: %s", v.Name, cmd, err, out)
	}
	return out
}

// Ctl writes one command to containers/NAME/ctl; a failure quotes error.
func (v *VM) Ctl(name, command string) error { return v.CtlWithin(name, command, shTimeout) }

// CtlWithin is Ctl with a deadline of its own (RunWithin).
func (v *VM) CtlWithin(name, command string, timeout time.Duration) error {
	out, err := v.RunWithin(fmt.Sprintf("cd /mnt/ctrfs && echo '%s' > containers/%s/ctl", command, name), timeout)
	if err != nil {
		e, _ := v.Sh("cat containers/" + name + "/error")
		return fmt.Errorf("%s: echo '%s' > containers/%s/ctl: %v %s (error: %s)", v.Name, command, name, err, out, e)
	}
	return nil
}

func (v *VM) MustCtl(t *testing.T, name, command string) {
	t.Helper()
	start := time.Now()
	if err := v.Ctl(name, command); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s: %s took %.1f s", v.Name, name, command, time.Since(start).Seconds())
}

func (v *VM) Info(name string) map[string]string {
	out, _ := v.Sh("cat containers/" + name + "/info")
	return tree.ParseKV(out)
}

func (v *VM) Has(name string) bool {
	_, err := v.Sh("test -d containers/" + name)
	return err == nil
}

func (v *VM) Status(name string) string {
	out, err := v.Sh("cat containers/" + name + "/status")
	if err != nil {
		return ""
	}
	return out
}

func (v *VM) WantStatus(t *testing.T, name, want, when string) {
	t.Helper()
	if got := v.Status(name); got != want {
		t.Fatalf("%s on %s is %q %s; want %s%s", name, v.Name, got, when, want, v.why(name))
	}
}

// why is what a failure report needs from the VM: the container's error
// and the CRIU lines of its log that name a cause.
func (v *VM) why(name string) string {
	e, _ := v.Sh("cat containers/" + name + "/error")
	causes, _ := v.Sh("grep -n -E \"Error \\(|ERROR|Can't|Unable to open|denied|[Ff]ailed\" containers/" + name + "/log | tail -n 30")
	logTail, _ := v.Sh("tail -n 30 containers/" + name + "/log")
	return fmt.Sprintf("\n--- %s: containers/%s/error:\n%s\n--- log lines naming a cause:\n%s\n--- log (last 30 lines):\n%s", v.Name, name, e, causes, logTail)
}

// Kill cuts the VM's power: its qemu is killed by pid (vm.sh kill).
func (v *VM) Kill(t *testing.T) {
	t.Helper()
	out, err := exec.Command(filepath.Join(scripts(), "vm.sh"), "kill", v.ID).CombinedOutput()
	t.Logf("%s", bytes.TrimSpace(out))
	if err != nil {
		t.Fatalf("vm.sh kill %s: %v", v.ID, err)
	}
}

// Boot starts a killed VM again on its overlay and waits until its ctrfs
// (started by systemd at boot) has mounted the tree.
func (v *VM) Boot(t *testing.T) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(scripts(), "vm.sh"), "start", v.ID).CombinedOutput()
	t.Logf("%s", bytes.TrimSpace(out))
	if err != nil {
		t.Fatalf("vm.sh start %s: %v", v.ID, err)
	}
	waitFor(t, v.Name+"'s ctrfs to mount", bootTimeout, func() bool {
		_, err := v.Run("systemctl is-active ctrfs && test -e /mnt/ctrfs/ctl")
		return err == nil
	})
	t.Logf("%s booted again, ctrfs up after %.0f s", v.Name, time.Since(start).Seconds())
}

// waitFor polls cond every 2 s until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Second)
	}
}

// removeAfter stops and destroys NAME on both VMs when the test ends,
// whatever state it is in.
func removeAfter(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, v := range []*VM{vmA, vmB} {
			for _, n := range names {
				v.Sh(fmt.Sprintf("if [ -d containers/%[1]s ]; then echo stop > containers/%[1]s/ctl; rmdir containers/%[1]s; fi", n))
			}
		}
	})
}

// TestDiscovery: the two daemons found each other (hosts/ lists the peer)
// and run the kernels the bed is for.
func TestDiscovery(t *testing.T) {
	for _, pair := range [][2]*VM{{vmA, vmB}, {vmB, vmA}} {
		v, peer := pair[0], pair[1]
		waitFor(t, v.Name+" to list "+peer.Name+" in hosts/", 5*time.Minute, func() bool {
			out, _ := v.Sh("ls hosts")
			return strings.Contains(" "+strings.Join(strings.Fields(out), " ")+" ", " "+peer.Name+" ")
		})
		info := v.MustSh(t, "cat hosts/"+peer.Name+"/info")
		t.Logf("%s: hosts/%s/info:\n%s", v.Name, peer.Name, info)
	}
	ka, _ := vmA.Run("uname -r")
	kb, _ := vmB.Run("uname -r")
	t.Logf("kernels: %s %s, %s %s", vmA.Name, ka, vmB.Name, kb)
	if ka == kb {
		t.Errorf("both VMs run %s: the bed is for moves across kernel versions", ka)
	}
}
