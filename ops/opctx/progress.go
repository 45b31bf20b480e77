package opctx

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Progress is what `info` shows of an operation under way: `op`, `phase`
// and `progress` (bytes done of bytes expected). The operation updates it
// without the manager's lock; `info` reads it without waiting for the
// operation, whose lock it never takes.
type Progress struct {
	op       string
	done     atomic.Int64
	expected atomic.Int64

	mu    sync.Mutex
	stage string // a move's phase (check, precopy, freeze, …), set by cluster/
	step  string // what runs now: dump, store, restore, unpack, …
	stop  func() // ends the sampler of the current step
}

// NewProgress is the progress of an operation named op (as `info`'s
// `op` line shows it), before its first step.
func NewProgress(op string) *Progress { return &Progress{op: op} }

// progressInterval is how often a sampled step (see Sample) measures what
// it has done: `info` is promised an update at least every second.
const progressInterval = 250 * time.Millisecond

func (p *Progress) KeyValues() []KeyValue {
	p.mu.Lock()
	phase := p.stage
	if p.step != "" {
		if phase != "" {
			phase += "/"
		}
		phase += p.step
	}
	if phase == "" {
		phase = "starting" // before its first step: never an empty line
	}
	p.mu.Unlock()
	done, expected := p.done.Load(), p.expected.Load()
	if done > expected {
		expected = done // an estimate fell short
	}
	return []KeyValue{{"op", p.op}, {"phase", phase}, {"progress", fmt.Sprintf("%d of %d", done, expected)}}
}

// SetStage starts a phase of a move: the steps in it show under it.
func (p *Progress) SetStage(stage string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stage, p.step = stage, ""
	p.mu.Unlock()
	p.EndSample()
	p.done.Store(0)
	p.expected.Store(0)
}

// SetStep starts a step that expects about expected bytes.
func (p *Progress) SetStep(step string, expected int64) {
	if p == nil {
		return
	}
	p.EndSample()
	p.mu.Lock()
	p.step = step
	p.mu.Unlock()
	p.done.Store(0)
	p.expected.Store(expected)
}

// Sample starts a step whose bytes done are measured by measure every
// progressInterval, until the next step or the end of the operation.
func (p *Progress) Sample(step string, expected int64, measure func() int64) {
	if p == nil {
		return
	}
	p.SetStep(step, expected)
	quit := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				p.done.Store(measure())
			}
		}
	}()
	p.mu.Lock()
	p.stop = func() { close(quit); <-stopped }
	p.mu.Unlock()
}

func (p *Progress) EndSample() {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Add counts bytes done in the current step.
func (p *Progress) Add(done int64) {
	if p != nil {
		p.done.Add(done)
	}
}

// DirSize is the bytes of the files in dir (not below it): what CRIU has
// written of a dump so far, or what an unpack has.
func DirSize(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if fi, err := os.Lstat(filepath.Join(dir, e.Name())); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}
