package critview

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"testing"
	"testing/fstest"
)

// dumpDir is a real dump of busybox by CRIU, which the images package's
// tests store.
const dumpDir = "../testdata/busybox-dump"

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
}

func TestProcessTreeErrors(t *testing.T) {
	if _, err := ProcessTree(fstest.MapFS{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no pstree.img: %v", err)
	}
	core, _ := os.ReadFile(dumpDir + "/core-1.img")
	if _, err := ProcessTree(fstest.MapFS{"pstree.img": {Data: core}}); err == nil {
		t.Fatal("accepted a core image as pstree.img")
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
