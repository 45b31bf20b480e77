package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"ctrfs/ops/lxcpath"
	"ctrfs/ops/opctx"
)

// ledger holds the bookkeeping of the operations on this host's
// containers: each container's lock (one operation at a time), the
// progress of the operation under way, and the record of the last one
// behind `error`, `log` and `info`; it reports every operation that ends
// (its record, an event, a log line). It knows nothing of what the
// operations do.
type ledger struct {
	host       string
	containers *lxcpath.Containers // whether a name's record is of a container here
	events     *EventBus
	log        *slog.Logger

	mu      sync.Mutex
	busy    map[string]string // container -> operation under way
	running map[string]*opctx.Progress
	records map[string]*record
	gone    []string // names recorded with no container, oldest first (keepRecord)
}

func newLedger(host string, containers *lxcpath.Containers, events *EventBus, log *slog.Logger) *ledger {
	return &ledger{host: host, containers: containers, events: events, log: log,
		busy: map[string]string{}, running: map[string]*opctx.Progress{}, records: map[string]*record{}}
}

// record is what the container's `error`, `log` and `info` files report
// about the last operation.
type record struct {
	lastErr   string
	log       []byte
	lastOp    string
	lastOpDur time.Duration
	extra     []KeyValue // phase timings of the last operation

	// When lastOp, lastErr and log last changed: the mtimes of the
	// container's directory, status and info; of error; of log.
	opAt, errAt, logAt time.Time
}

// operation is what run needs to know about one operation.
type operation struct {
	name string // container whose lock and record it uses
	what string // as shown in events and last-op
	fn   func(context.Context, *opContext) error
}

// opContext is what an operation reports besides its error (opctx.Op).
type opContext = opctx.Op

// acquire takes the container's operation lock, or fails with ErrBusy
// naming the operation under way.
func (l *ledger) acquire(name, op string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.busy[name]; ok {
		return nil, newError(ErrBusy, fmt.Sprintf("%s: %s is under way", name, cur), nil)
	}
	l.busy[name] = op
	return func() {
		l.mu.Lock()
		delete(l.busy, name)
		l.mu.Unlock()
	}, nil
}

// checkIdle is Manager.CheckIdle.
func (l *ledger) checkIdle(name string) error {
	l.mu.Lock()
	cur, ok := l.busy[name]
	l.mu.Unlock()
	if !ok {
		return nil
	}
	err := newError(ErrBusy, fmt.Sprintf("%s: %s is under way", name, cur), nil)
	l.finish(operation{name: name, what: "ctl"}, &opContext{}, 0, err)
	return err
}

// recordOf is the record of name, a blank one that is not kept if there
// is none: asking about a name (a peer's status query, say) keeps nothing.
// l.mu is held.
func (l *ledger) recordOf(name string) *record {
	if r, ok := l.records[name]; ok {
		return r
	}
	return &record{}
}

// get is a copy of name's record (recordOf), and the progress of the
// operation under way on it, if any, read at once.
func (l *ledger) get(name string) (record, *opctx.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return *l.recordOf(name), l.running[name]
}

// maxGoneRecords bounds the records kept of names with no container: a
// move away, a failed receive or create, a destroy under way. Their
// `error` and bug report stay for a while, not for every name ever seen.
const maxGoneRecords = 64

// keepRecord is the record of name that an operation updates, made if
// there is none; here is whether the container exists. l.mu is held.
func (l *ledger) keepRecord(name string, here bool) *record {
	r, ok := l.records[name]
	if !ok {
		r = &record{}
		l.records[name] = r
	}
	l.gone = slices.DeleteFunc(l.gone, func(n string) bool { return n == name })
	if !here {
		l.gone = append(l.gone, name)
		if len(l.gone) > maxGoneRecords {
			delete(l.records, l.gone[0])
			l.gone = slices.Delete(l.gone, 0, 1)
		}
	}
	return r
}

// run executes op under the container's lock and reports it: the record
// behind `error`, `log` and `info`, an event, and a log line.
func (l *ledger) run(ctx context.Context, op operation) error {
	release, err := l.acquire(op.name, op.what)
	if err != nil {
		l.finish(op, &opContext{}, 0, err)
		return err
	}
	defer release()
	start := time.Now()
	oc := &opContext{Progress: l.beginProgress(op.name, op.what)}
	err = op.fn(ctx, oc)
	l.endProgress(op.name, oc.Progress)
	l.finish(op, oc, time.Since(start), err)
	return err
}

// beginProgress registers the progress of an operation on name.
func (l *ledger) beginProgress(name, op string) *opctx.Progress {
	p := opctx.NewProgress(op)
	l.mu.Lock()
	l.running[name] = p
	l.mu.Unlock()
	return p
}

func (l *ledger) endProgress(name string, p *opctx.Progress) {
	p.EndSample()
	l.mu.Lock()
	if l.running[name] == p {
		delete(l.running, name)
	}
	l.mu.Unlock()
}

func (l *ledger) finish(op operation, oc *opContext, d time.Duration, err error) {
	result := "ok"
	now := time.Now()
	here := l.containers.Exists(op.name)
	l.mu.Lock()
	r := l.keepRecord(op.name, here)
	lastErr := ""
	if err != nil {
		result = "failed"
		lastErr = err.Error()
	}
	if lastErr != r.lastErr {
		r.lastErr, r.errAt = lastErr, now
	}
	if oc.HasLog {
		r.log, r.logAt = oc.Log, now
	}
	if !errors.Is(err, ErrBusy) || d > 0 {
		r.lastOp, r.lastOpDur, r.extra, r.opAt = op.what, d, oc.Extra, now
	}
	l.mu.Unlock()
	if err != nil {
		l.log.Warn("operation failed", "container", op.name, "op", op.what, "err", err)
	} else {
		l.log.Info("operation done", "container", op.name, "op", op.what, "seconds", d.Seconds())
	}
	l.events.Publish(Event{Time: now, Host: l.host, Container: op.name,
		What: op.what, Result: result, Seconds: d.Seconds()})
}

// publish adds a line to `events` about a container, besides the one
// every operation writes.
func (l *ledger) publish(name, what, result string, d time.Duration) {
	l.events.Publish(Event{Time: time.Now(), Host: l.host, Container: name,
		What: what, Result: result, Seconds: d.Seconds()})
}

// forget drops the record of a container that is gone.
func (l *ledger) forget(name string) {
	l.mu.Lock()
	delete(l.records, name)
	l.gone = slices.DeleteFunc(l.gone, func(n string) bool { return n == name })
	l.mu.Unlock()
}

// rename keeps the record of a container under its new name.
func (l *ledger) rename(oldName, newName string) {
	l.mu.Lock()
	if r, ok := l.records[oldName]; ok {
		l.records[newName] = r
		delete(l.records, oldName)
	}
	l.mu.Unlock()
}
