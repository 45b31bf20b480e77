package ops

import (
	"fmt"
	"testing"
)

func TestLogRingKeepsTheLastLines(t *testing.T) {
	r := NewLogRing(3)
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(r, "line %d\n", i)
	}
	r.Write([]byte("half "))
	r.Write([]byte("line\n"))
	if got, want := string(r.Bytes()), "line 4\nline 5\nhalf line\n"; got != want {
		t.Fatalf("ring holds %q; want %q", got, want)
	}
}
