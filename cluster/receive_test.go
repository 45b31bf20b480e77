package cluster

import (
	"log/slog"
	"testing"
	"time"
)

// TestSessionOutlastsItsCall: a call of a session that runs for longer
// than sessionIdle on the target (an install restoring a big container on
// a loaded host) does not have the session expire under it, and the lease
// runs again from the call's end. Before, the lease ran from the call's
// start only, and the session of a source that was waiting for the call's
// answer expired.
func TestSessionOutlastsItsCall(t *testing.T) {
	defer func(d time.Duration) { sessionIdle = d }(sessionIdle)
	sessionIdle = 20 * time.Millisecond
	r := &receiver{log: slog.New(slog.DiscardHandler), sessions: map[string]*session{}}
	sess := &session{token: "t", name: "c1"}
	r.sessions["t"] = sess
	sess.timer = time.AfterFunc(sessionIdle, func() { r.expire("t") })

	_, done, err := r.session("t")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * sessionIdle) // the call runs: the timer fires meanwhile
	r.mu.Lock()
	_, alive := r.sessions["t"]
	r.mu.Unlock()
	if !alive {
		t.Fatal("the session expired while a call of it ran")
	}
	done()
	r.mu.Lock()
	rearmed := sess.timer.Stop() // and the test's session is not dropped (it has no Incoming)
	r.mu.Unlock()
	if !rearmed {
		t.Fatal("the end of the call did not start the session's lease again")
	}
}
