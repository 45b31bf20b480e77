//go:build vmtest

package vmtest

// The counting client: the busybox template's counter service (TCP 8080,
// a count kept in memory, five a second) asked from this host over the
// bed's container segment. A count that goes on from where it was shows
// the processes kept their memory; the longest gap between two answers is
// the downtime a client saw.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"ctrfs/internal/counter"
)

func tryCount(ip string) (int, error) { return counter.Ask(ip, 2*time.Second, 5*time.Second) }

// Count asks for the count, retrying for up to two minutes while the
// service comes up.
func Count(t *testing.T, ip string) int {
	t.Helper()
	var n int
	var err error
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if n, err = tryCount(ip); err == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counter on %s:8080 does not answer: %v", ip, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countFrom fails the test if the count started again (a cold start
// counts from 1): the processes lost their memory.
func countFrom(t *testing.T, ip string, before int, when string) int {
	t.Helper()
	n := Count(t, ip)
	if n < before {
		t.Fatalf("count went from %d to %d %s: the processes lost their state", before, n, when)
	}
	return n
}

// CountsPast waits (up to ten minutes: the emulation is slow) until the
// count is past n.
func CountsPast(t *testing.T, ip string, n int) int {
	t.Helper()
	var got int
	waitFor(t, fmt.Sprintf("the count on %s to pass %d", ip, n), 10*time.Minute, func() bool {
		c, err := tryCount(ip)
		got = c
		return err == nil && c > n
	})
	return got
}

// Prober asks the counter every 100 ms in the background.
type Prober struct {
	ip   string
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	last     time.Time // last answer
	maxGap   time.Duration
	lastN    int
	backward bool // the count went back: a restart, not a move
}

func StartProber(ip string) *Prober {
	p := &Prober{ip: ip, stop: make(chan struct{}), done: make(chan struct{}), last: time.Now()}
	go p.run()
	return p
}

func (p *Prober) run() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		n, err := tryCount(p.ip)
		if err != nil {
			continue
		}
		p.mu.Lock()
		if gap := time.Since(p.last); gap > p.maxGap {
			p.maxGap = gap
		}
		if n < p.lastN {
			p.backward = true
		}
		p.last, p.lastN = time.Now(), n
		p.mu.Unlock()
	}
}

// Stop ends the probing and reports the longest gap between answers and
// whether the count ever went back.
func (p *Prober) Stop() (maxGap time.Duration, backward bool) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxGap, p.backward
}
