package ops

import (
	"bytes"
	"sync"
)

// LogRing keeps the daemon's most recent log lines for bug reports: the
// logger writes into it beside stderr, and it drops the oldest lines past
// its bound.
type LogRing struct {
	mu      sync.Mutex
	lines   [][]byte
	next    int // where the next line goes once the ring is full
	max     int
	partial []byte // a line not yet ended by a newline
}

// NewLogRing keeps the last max lines.
func NewLogRing(max int) *LogRing { return &LogRing{max: max} }

// Write takes log output; slog writes whole lines, but a line split over
// writes is joined.
func (r *LogRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	data := append(r.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		r.push(bytes.Clone(data[:i+1]))
		data = data[i+1:]
	}
	r.partial = bytes.Clone(data)
	return len(p), nil
}

func (r *LogRing) push(line []byte) {
	if len(r.lines) < r.max {
		r.lines = append(r.lines, line)
		return
	}
	r.lines[r.next] = line
	r.next = (r.next + 1) % r.max
}

// Bytes is the kept lines, oldest first.
func (r *LogRing) Bytes() []byte {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	for i := range r.lines {
		b.Write(r.lines[(r.next+i)%len(r.lines)])
	}
	return b.Bytes()
}
