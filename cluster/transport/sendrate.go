package transport

import (
	"io"
	"sync"
	"time"

	"ctrfs/ops/testhooks"
)

// sendRate is CTRFS_TEST_SEND_RATE=BYTES_PER_SECOND, a test hook: the rate
// at which a connection this host dials writes to the peer's endpoint, so
// that a test on one machine can move a container over a link as slow as
// an emulated host's under load. Unset (0), connections are not limited.
var sendRate = testhooks.Int("CTRFS_TEST_SEND_RATE", 0)

// paced writes to w at no more than rate bytes a second on average since
// its first write.
type paced struct {
	io.ReadWriteCloser
	rate int64

	mu      sync.Mutex
	started time.Time
	written int64
}

// limitSending is conn limited to sendRate, when the hook is set.
func limitSending(conn io.ReadWriteCloser) io.ReadWriteCloser {
	if sendRate <= 0 {
		return conn
	}
	return &paced{ReadWriteCloser: conn, rate: sendRate}
}

func (p *paced) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started.IsZero() {
		p.started = time.Now()
	}
	// In pieces of a tenth of a second's worth, so that the bytes leave
	// at a steady rate rather than in bursts of a whole batch.
	piece := max(p.rate/10, 1)
	total := 0
	for len(b) > 0 {
		n := int(min(int64(len(b)), piece))
		w, err := p.ReadWriteCloser.Write(b[:n])
		total += w
		p.written += int64(w)
		if err != nil {
			return total, err
		}
		b = b[n:]
		due := p.started.Add(time.Duration(p.written * int64(time.Second) / p.rate))
		time.Sleep(time.Until(due))
	}
	return total, nil
}
