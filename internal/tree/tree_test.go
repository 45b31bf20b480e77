package tree

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dir makes a directory laid out as a container's: status, info, error,
// and a ctl file (/dev/full instead when ctlFails, so that writing the
// command fails as a refused one does, with ENOSPC).
func dir(t *testing.T, ctlFails bool, files map[string]string) string {
	t.Helper()
	d := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctl := filepath.Join(d, "ctl")
	var err error
	if ctlFails {
		err = os.Symlink("/dev/full", ctl)
	} else {
		err = os.WriteFile(ctl, []byte("an earlier command, longer than the next\n"), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCtlWritesOneLine(t *testing.T) {
	d := dir(t, false, nil)
	if err := Ctl(d, "stop-stateful"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(d, "ctl")); string(b) != "stop-stateful\n" {
		t.Fatalf("ctl holds %q, want the command and a newline alone", b)
	}
}

func TestCtlFailureSaysWhy(t *testing.T) {
	d := dir(t, true, map[string]string{"error": "c1 is RUNNING\n"})
	err := Ctl(d, "start")
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v does not wrap the errno", err)
	}
	for _, want := range []string{"echo start > " + filepath.Join(d, "ctl"), "(error: c1 is RUNNING)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// A ctl that cannot be opened: no command ran, so error is not its.
	d = dir(t, false, map[string]string{"error": "an earlier failure\n"})
	os.Remove(filepath.Join(d, "ctl"))
	if err := Ctl(d, "start"); !errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "earlier") {
		t.Errorf("Ctl without a ctl: %v", err)
	}
	if got := ErrorSuffix(dir(t, false, map[string]string{"error": "\n"})); got != "" {
		t.Errorf("an empty error file gives %q, want nothing", got)
	}
}

func TestStatusAndWait(t *testing.T) {
	d := dir(t, false, map[string]string{"status": "STOPPED\n", "error": "busy\n"})
	if st, err := Status(d); err != nil || st != "STOPPED" {
		t.Fatalf("Status = %q, %v", st, err)
	}
	if err := WaitStatus(d, "STOPPED", time.Second); err != nil {
		t.Fatal(err)
	}
	err := WaitStatus(d, "RUNNING", 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "is STOPPED, not RUNNING") || !strings.Contains(err.Error(), "(error: busy)") {
		t.Fatalf("WaitStatus of a status that never comes: %v", err)
	}
	// A status that changes while it waits (the writer is not timed: the
	// wait has a minute for it).
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.WriteFile(filepath.Join(d, "status"), []byte("RUNNING\n"), 0o644)
	}()
	if err := WaitStatus(d, "RUNNING", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := Status(t.TempDir()); err == nil {
		t.Fatal("Status of a directory without status succeeded")
	}
}

func TestParseKV(t *testing.T) {
	kv := ParseKV("name: c1\nstatus:  RUNNING \nipv6:\nno colon here\nendpoint: 127.0.0.2:7961\n")
	want := map[string]string{"name": "c1", "status": "RUNNING", "ipv6": "", "endpoint": "127.0.0.2:7961"}
	if len(kv) != len(want) {
		t.Fatalf("ParseKV = %v, want %v", kv, want)
	}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("%s = %q, want %q", k, kv[k], v)
		}
	}
	if kv := ReadKV(filepath.Join(t.TempDir(), "missing")); len(kv) != 0 {
		t.Errorf("ReadKV of a missing file = %v", kv)
	}
	d := dir(t, false, map[string]string{"info": "stateful: yes\n", "host": "dakara\n"})
	if Info(d)["stateful"] != "yes" {
		t.Errorf("Info = %v", Info(d))
	}
	if h, err := Host(d); err != nil || h != "dakara" {
		t.Errorf("Host = %q, %v", h, err)
	}
}

// TestEventsFollows follows a FIFO named events: what a writer puts in it
// after FollowEvents returns is seen, and Close ends the reader even while
// it waits for more.
func TestEventsFollows(t *testing.T) {
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d, "events")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opening a FIFO to write waits for its reader: the cat.
	writer := make(chan *os.File, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
		}
		writer <- w
	}()
	e, err := FollowEvents(d)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	w := <-writer
	if w == nil {
		return
	}
	defer w.Close()
	w.WriteString("2026-01-02T03:04:05Z dakara c1 start ok 0.51\n")
	if err := e.Wait("dakara c1 start ok", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := e.Wait("dakara c1 stop ok", 50*time.Millisecond); !errors.Is(err, ErrNoEvent) || !strings.Contains(err.Error(), "c1 start ok") {
		t.Fatalf("Wait for an event that does not come: %v", err)
	}
	e.Close()
	if !strings.HasSuffix(e.Text(), "start ok 0.51\n") {
		t.Fatalf("Text after Close = %q", e.Text())
	}
}

func TestEventsWithoutFile(t *testing.T) {
	if _, err := FollowEvents(t.TempDir()); err == nil || !strings.Contains(err.Error(), "No such file") {
		t.Fatalf("FollowEvents of a directory without events: %v", err)
	}
}
