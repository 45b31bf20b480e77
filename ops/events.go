package ops

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Event is one line of the `events` file.
type Event struct {
	Time      time.Time
	Host      string
	Container string
	What      string
	Result    string // "ok" or "failed"
	Seconds   float64
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s %s %s %s %.2f\n", e.Time.UTC().Format(time.RFC3339),
		e.Host, e.Container, e.What, e.Result, e.Seconds)
}

// EventBus fans events out to every open `events` file. A reader that falls
// more than subscriptionBuffer events behind loses the oldest ones rather than
// stalling the operations that publish them.
type EventBus struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

const subscriptionBuffer = 1024

func NewEventBus() *EventBus { return &EventBus{subs: map[*Subscription]struct{}{}} }

type Subscription struct {
	bus *EventBus
	ch  chan Event
}

// Subscribe returns a subscription that sees every event published from now on.
func (b *EventBus) Subscribe() *Subscription {
	s := &Subscription{bus: b, ch: make(chan Event, subscriptionBuffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

func (b *EventBus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		for {
			select {
			case s.ch <- e:
			default:
				select { // full: drop the oldest and retry
				case <-s.ch:
				default:
				}
				continue
			}
			break
		}
	}
}

// Close ends every subscription: blocked readers see end of file, so that
// the mount can be taken down while someone is reading `events`.
func (b *EventBus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for s := range b.subs {
		close(s.ch)
	}
	b.subs = nil
}

// Next blocks until the next event; ok is false when the bus is closed or ctx
// is done.
func (s *Subscription) Next(ctx context.Context) (Event, bool) {
	select {
	case e, ok := <-s.ch:
		return e, ok
	case <-ctx.Done():
		return Event{}, false
	}
}

func (s *Subscription) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}
