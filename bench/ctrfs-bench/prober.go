package main

// The prober: a client of the container's counter service (port 8080 of
// both templates) that connects every few milliseconds and records when
// each answer came, so that downtime is measured from outside, as a user
// of the service sees it (migrate.go, snapshots.go, template.go).

import (
	"bufio"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// answer is one answer of the counter service: when it arrived and the
// count it gave.
type answer struct {
	at    time.Time
	count int
}

// prober connects to a TCP service every interval, several connections in
// flight at most, and records the answers.
type prober struct {
	addr     string
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}

	mu       sync.Mutex
	answers  []answer    // in the order they arrived
	failures []time.Time // connections that failed or went unanswered
}

// Connections in flight at most, and how long each may take: a connection
// to a container that is down waits for its timeout, so that several
// overlap and a new attempt still goes out about every interval.
const (
	probeSlots       = 64
	probeDialTimeout = 150 * time.Millisecond
	probeReadTimeout = 500 * time.Millisecond
)

func startProber(addr string, interval time.Duration) *prober {
	p := &prober{addr: addr, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *prober) loop() {
	defer close(p.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, probeSlots)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // all in flight
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			p.try()
		}()
	}
}

func (p *prober) try() {
	n, err := func() (int, error) {
		conn, err := net.DialTimeout("tcp", p.addr, probeDialTimeout)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(probeReadTimeout))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(line))
	}()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures = append(p.failures, now)
		return
	}
	p.answers = append(p.answers, answer{at: now, count: n})
}

func (p *prober) close() {
	close(p.stop)
	<-p.done
}

// sorted is a copy of the answers in the order they arrived.
func (p *prober) sorted() []answer {
	p.mu.Lock()
	a := append([]answer(nil), p.answers...)
	p.mu.Unlock()
	sort.Slice(a, func(i, j int) bool { return a[i].at.Before(a[j].at) })
	return a
}

// waitAnswer waits for the first answer that arrives at or after since.
func (p *prober) waitAnswer(since time.Time, timeout time.Duration) (answer, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, a := range p.sorted() {
			if !a.at.Before(since) {
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			p.mu.Lock()
			nf := 0
			for _, f := range p.failures {
				if !f.Before(since) {
					nf++
				}
			}
			p.mu.Unlock()
			return answer{}, fmt.Errorf("the service at %s did not answer within %s (%d connections failed)", p.addr, timeout, nf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gap is the longest time between two answers from the last one before
// start to the first one at or after end, the last count before start, and
// how many connections failed in between.
func (p *prober) gap(start, end time.Time) (gap time.Duration, countBefore, failed int, ok bool) {
	a := p.sorted()
	first := -1
	for i := range a {
		if !a[i].at.After(start) {
			first = i
		}
	}
	if first < 0 {
		return 0, 0, 0, false
	}
	countBefore = a[first].count
	for i := first + 1; i < len(a) && a[i-1].at.Before(end); i++ {
		gap = max(gap, a[i].at.Sub(a[i-1].at))
	}
	p.mu.Lock()
	for _, f := range p.failures {
		if f.After(a[first].at) && !f.After(end) {
			failed++
		}
	}
	p.mu.Unlock()
	return gap, countBefore, failed, true
}

// maxCount is the highest count answered in [from, to].
func (p *prober) maxCount(from, to time.Time) int {
	n := -1
	for _, a := range p.sorted() {
		if !a.at.Before(from) && !a.at.After(to) {
			n = max(n, a.count)
		}
	}
	return n
}
