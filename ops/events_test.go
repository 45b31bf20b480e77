package ops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func ev(i int) Event {
	return Event{
		Time:      time.Date(2026, 11, 25, 2, 10, 0, 0, time.UTC),
		Host:      "dakara",
		Container: fmt.Sprintf("c%d", i),
		What:      "start",
		Result:    "ok",
		Seconds:   float64(i),
	}
}

// next reads one event, failing the test if none comes within a second.
func next(t *testing.T, s *Subscription) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	e, ok := s.Next(ctx)
	if !ok {
		t.Fatalf("Next: no event")
	}
	return e
}

// expectNone checks that no event is waiting.
func expectNone(t *testing.T, s *Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if e, ok := s.Next(ctx); ok {
		t.Fatalf("Next: unexpected event %+v", e)
	}
}

func TestEventString(t *testing.T) {
	east := time.FixedZone("UTC+3", 3*3600)
	tests := []struct {
		e    Event
		want string
	}{
		// docs/ctrfs.5.md's example line.
		{Event{time.Date(2026, 11, 25, 2, 10, 0, 0, time.UTC), "dakara", "c1", "stop-stateful", "ok", 0.48},
			"2026-11-25T02:10:00Z dakara c1 stop-stateful ok 0.48\n"},
		// Local time is shown in UTC; sub-second time is cut.
		{Event{time.Date(2026, 11, 25, 5, 10, 0, 999_000_000, east), "dakara", "c1", "start", "ok", 1},
			"2026-11-25T02:10:00Z dakara c1 start ok 1.00\n"},
		{Event{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "tollana", "web-1", "move", "failed", 12.345678},
			"2026-01-02T03:04:05Z tollana web-1 move failed 12.35\n"},
		{Event{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "h", "c", "freeze", "ok", 0},
			"2026-01-02T03:04:05Z h c freeze ok 0.00\n"},
		{Event{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "h", "c", "snapshot", "ok", 0.004},
			"2026-01-02T03:04:05Z h c snapshot ok 0.00\n"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// Every line has docs/ctrfs.5.md's six fields: TIME HOST CONTAINER WHAT RESULT SECONDS.
func TestEventStringFields(t *testing.T) {
	e := Event{Time: time.Now(), Host: "dakara", Container: "c1", What: "stop-stateful", Result: "ok", Seconds: 3.14159}
	line := e.String()
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("%q is not one line", line)
	}
	f := strings.Split(strings.TrimSuffix(line, "\n"), " ")
	if len(f) != 6 {
		t.Fatalf("%q has %d fields, want 6", line, len(f))
	}
	if ts, err := time.Parse(time.RFC3339, f[0]); err != nil || !strings.HasSuffix(f[0], "Z") {
		t.Errorf("TIME %q is not RFC 3339 UTC: %v", f[0], err)
	} else if d := e.Time.Sub(ts); d < 0 || d >= time.Second {
		t.Errorf("TIME %q is %v off the event's time", f[0], d)
	}
	if f[1] != "dakara" || f[2] != "c1" || f[3] != "stop-stateful" || f[4] != "ok" {
		t.Errorf("fields %q", f)
	}
	if s, err := strconv.ParseFloat(f[5], 64); err != nil || s != 3.14 {
		t.Errorf("SECONDS %q, want 3.14", f[5])
	}
}

func TestEventBusSubscriberSeesOnlyLaterEvents(t *testing.T) {
	b := NewEventBus()
	defer b.Close()
	b.Publish(ev(1)) // nobody listening: gone
	s1 := b.Subscribe()
	b.Publish(ev(2))
	s2 := b.Subscribe()
	b.Publish(ev(3))

	if e := next(t, s1); e != ev(2) {
		t.Errorf("s1 first = %+v, want event 2", e)
	}
	if e := next(t, s1); e != ev(3) {
		t.Errorf("s1 second = %+v, want event 3", e)
	}
	expectNone(t, s1)
	if e := next(t, s2); e != ev(3) {
		t.Errorf("s2 first = %+v, want event 3", e)
	}
	expectNone(t, s2)
}

func TestEventBusOrderAndFanOut(t *testing.T) {
	b := NewEventBus()
	defer b.Close()
	subs := []*Subscription{b.Subscribe(), b.Subscribe(), b.Subscribe()}
	for i := 0; i < 100; i++ {
		b.Publish(ev(i))
	}
	for n, s := range subs {
		for i := 0; i < 100; i++ {
			if e := next(t, s); e != ev(i) {
				t.Fatalf("subscriber %d, event %d: got %+v", n, i, e)
			}
		}
		expectNone(t, s)
	}
}

func TestEventBusNextBlocksUntilPublish(t *testing.T) {
	b := NewEventBus()
	defer b.Close()
	s := b.Subscribe()
	got := make(chan Event, 1)
	go func() {
		e, ok := s.Next(context.Background())
		if ok {
			got <- e
		}
		close(got)
	}()
	select {
	case e := <-got:
		t.Fatalf("Next returned %+v before anything was published", e)
	case <-time.After(20 * time.Millisecond):
	}
	b.Publish(ev(7))
	select {
	case e, ok := <-got:
		if !ok || e != ev(7) {
			t.Fatalf("Next = %+v, %v; want event 7", e, ok)
		}
	case <-time.After(time.Second):
		t.Fatal("Next did not return after Publish")
	}
}

// A reader that does not keep up loses the oldest events; Publish never waits
// for it.
func TestEventBusSlowSubscriberLosesOldest(t *testing.T) {
	b := NewEventBus() // not closed at the end: a stuck Publish would hold its lock
	slow := b.Subscribe()
	const extra = 10
	total := subscriptionBuffer + extra
	done := make(chan struct{})
	go func() {
		for i := 0; i < total; i++ {
			b.Publish(ev(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	defer b.Close()
	for i := extra; i < total; i++ {
		if e := next(t, slow); e != ev(i) {
			t.Fatalf("event %d: got %+v (the %d oldest should be gone, the rest in order)", i, e, extra)
		}
	}
	expectNone(t, slow)
}

// A stalled subscriber does not hold back another one.
func TestEventBusSlowSubscriberDoesNotAffectOthers(t *testing.T) {
	b := NewEventBus() // not closed at the end: a stuck Publish would hold its lock
	_ = b.Subscribe()  // never read
	fast := b.Subscribe()
	total := 3 * subscriptionBuffer
	for i := 0; i < total; i++ {
		done := make(chan struct{})
		go func() { b.Publish(ev(i)); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Publish of event %d blocked on a subscriber that does not read", i)
		}
		if e := next(t, fast); e != ev(i) {
			t.Fatalf("fast subscriber, event %d: got %+v", i, e)
		}
	}
}

// closeWakesNext fails the test unless closing (named as closer) ends a
// Next on s that blocks for want of events, with ok=false.
func closeWakesNext(t *testing.T, s *Subscription, closer string, closing func()) {
	t.Helper()
	res := make(chan bool, 1)
	go func() {
		_, ok := s.Next(context.Background())
		res <- ok
	}()
	time.Sleep(10 * time.Millisecond)
	closing()
	select {
	case ok := <-res:
		if ok {
			t.Fatalf("Next after %s returned ok=true", closer)
		}
	case <-time.After(time.Second):
		t.Fatalf("%s did not wake a blocked Next", closer)
	}
}

func TestEventBusCloseEndsBlockedNext(t *testing.T) {
	b := NewEventBus()
	s := b.Subscribe()
	closeWakesNext(t, s, "Close", b.Close)
}

func TestEventBusAfterClose(t *testing.T) {
	b := NewEventBus()
	s := b.Subscribe()
	b.Close()
	b.Close() // idempotent
	b.Publish(ev(1))
	if _, ok := s.Next(context.Background()); ok {
		t.Error("Next on a closed bus returned ok=true")
	}
	late := b.Subscribe()
	if _, ok := late.Next(context.Background()); ok {
		t.Error("Next on a subscription made after Close returned ok=true")
	}
	// Closing subscriptions of a closed bus must not close their channels twice.
	s.Close()
	s.Close()
	late.Close()
}

func TestSubscriptionClose(t *testing.T) {
	b := NewEventBus()
	defer b.Close()
	s := b.Subscribe()
	other := b.Subscribe()
	s.Close()
	s.Close()        // idempotent
	b.Publish(ev(1)) // must not send on s's closed channel
	if _, ok := s.Next(context.Background()); ok {
		t.Error("Next on a closed subscription returned ok=true")
	}
	if e := next(t, other); e != ev(1) {
		t.Errorf("other subscriber got %+v", e)
	}
}

func TestSubscriptionCloseWakesBlockedNext(t *testing.T) {
	b := NewEventBus()
	defer b.Close()
	s := b.Subscribe()
	closeWakesNext(t, s, "Subscription.Close", s.Close)
}

func TestSubscriptionNextContext(t *testing.T) {
	b := NewEventBus()
	defer b.Close()
	s := b.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := s.Next(ctx); ok {
		t.Error("Next with a cancelled context returned ok=true")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, ok := s.Next(ctx); ok {
		t.Error("Next returned ok=true with nothing published")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Next took %v to notice its deadline", d)
	}
	// The subscription still works after a cancelled Next.
	b.Publish(ev(5))
	if e := next(t, s); e != ev(5) {
		t.Errorf("after a cancelled Next: got %+v", e)
	}
}

// Publishers, subscribers coming and going, and Close, all at once: meant for
// `go test -race`, and must neither panic nor deadlock.
func TestEventBusConcurrent(t *testing.T) {
	b := NewEventBus()
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				b.Publish(ev(i))
			}
		}()
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				s := b.Subscribe()
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				s.Next(ctx)
				cancel()
				s.Close()
			}
		}()
	}
	blocked := b.Subscribe()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, ok := blocked.Next(context.Background()); !ok {
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock")
	}
}
