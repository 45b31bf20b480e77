package ops

import (
	"errors"
	"fmt"
	"testing"
)

// Asking about a name keeps nothing, and the records of names with no
// container (moved away, failed to arrive) are bounded; a container's own
// record stays however many come and go.
func TestRecordsOfGoneNamesAreBounded(t *testing.T) {
	m := managerWith(t, "here")
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("asked%d", i)
		m.LastError(name)
		m.Files().Times(name)
		m.LastOp(name)
	}
	m.BugReportFiles("asked") // a peer's question after a failed move
	if n := len(m.ledger.records); n != 0 {
		t.Fatalf("%d records kept for names only asked about", n)
	}
	m.ledger.finish(operation{name: "here", what: "stop"}, &opContext{}, 0, errors.New("it failed"))
	for i := 0; i < 1000; i++ {
		m.ledger.finish(operation{name: fmt.Sprintf("gone%d", i), what: "receive"}, &opContext{}, 0, errors.New("no room"))
	}
	if n := len(m.ledger.records); n != maxGoneRecords+1 {
		t.Fatalf("%d records; want %d of gone names and the container's", n, maxGoneRecords+1)
	}
	if m.LastError("here") != "it failed" || m.LastError("gone999") != "no room" || m.LastError("gone0") != "" {
		t.Fatal("kept the wrong records: the container's and the latest gone names' must stay")
	}
}
