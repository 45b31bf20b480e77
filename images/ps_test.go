package images

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"testing"
	"testing/fstest"
)

var wantPS = []Process{
	{PID: 1, PPID: 0, Command: "init"},
	{PID: 4, PPID: 1, Command: "counter"},
	{PID: 5, PPID: 1, Command: "nc"},
	{PID: 52, PPID: 4, Command: "usleep"}, // the counter loop's sleep, caught mid-iteration
}

func TestProcessTree(t *testing.T) {
	got, err := ProcessTree(os.DirFS(dumpDir))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantPS) {
		t.Fatalf("got %+v, want %+v", got, wantPS)
	}

	s := newStore(t)
	m, _ := importSave(t, s, dumpDir, "state/c1")
	got, err = ProcessTree(s.FS(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantPS) {
		t.Fatalf("from store: got %+v, want %+v", got, wantPS)
	}
}

func TestProcessTreeErrors(t *testing.T) {
	if _, err := ProcessTree(fstest.MapFS{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no pstree.img: %v", err)
	}
	core, _ := os.ReadFile(dumpDir + "/core-1.img")
	if _, err := ProcessTree(fstest.MapFS{"pstree.img": {Data: core}}); err == nil {
		t.Fatal("accepted a core image as pstree.img")
	}

	s := newStore(t)
	m, _ := importSave(t, s, dumpDir, "state/c1")
	f, _ := m.File("core-4.img")
	os.WriteFile(s.chunks.chunkPath(f.Chunks[0].Hash), []byte("garbage"), 0o644)
	if _, err := ProcessTree(s.FS(m)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt core-4.img: %v", err)
	}
}

func TestFormatPS(t *testing.T) {
	want := "PID PPID COMMAND\n" +
		"  1    0 init\n" +
		"  4    1 counter\n" +
		"  5    1 nc\n" +
		" 52    4 usleep\n"
	if got := string(FormatPS(wantPS)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	wide := FormatPS([]Process{{PID: 123456, PPID: 1, Command: "x"}})
	if string(wide) != "   PID PPID COMMAND\n123456    1 x\n" {
		t.Fatalf("got\n%s", wide)
	}
}
