package boltstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// change is one queued Put or Delete: the record val under id, or (val
// nil) the removal of the record under id. val is never written once
// queued; Get copies it.
type change struct {
	id               string
	val              []byte
	created, expires time.Time
	size             int64 // the StoredResponse.Size() of val
	res              *result
}

// result is what a waiting Put or Delete (negative CommitDelay) learns of
// its change's commit; also is the result of a change this one replaced
// in the queue, whose caller waits too.
type result struct {
	err  error
	also *result
}

func (r *result) set(err error) {
	for ; r != nil; r = r.also {
		r.err = err
	}
}

// changes are the queued changes of one commit, in the order they came;
// an id's later change replaces its earlier one in place.
type changes struct {
	list  []change
	index map[string]int
	bytes int64
}

func newChanges() *changes { return &changes{index: map[string]int{}} }

func (q *changes) add(c change) {
	q.bytes += int64(len(c.id) + len(c.val))
	if i, ok := q.index[c.id]; ok {
		old := &q.list[i]
		q.bytes -= int64(len(old.id) + len(old.val))
		if old.res != nil { // whoever waits for the replaced change waits for this one
			if c.res == nil {
				c.res = old.res
			} else {
				c.res.also = old.res
			}
		}
		*old = c
		return
	}
	q.index[c.id] = len(q.list)
	q.list = append(q.list, c)
}

func (q *changes) get(id string) (change, bool) {
	if i, ok := q.index[id]; ok {
		return q.list[i], true
	}
	return change{}, false
}

func (q *changes) reset() {
	clear(q.list) // drop the records for the collector
	q.list = q.list[:0]
	clear(q.index)
	q.bytes = 0
}

// The queue commits at once, without waiting for CommitDelay, when it
// holds this much.
const (
	hurryChanges = 1000
	hurryBytes   = 8 << 20
)

// writer queues the changes of Put and Delete and commits them in the
// background, many to a transaction.
type writer struct {
	s         *Store
	delay     time.Duration // negative: callers wait for their commit
	maxQueued int64
	onErr     func(error)

	mu        sync.Mutex
	pending   *changes      // queued, not yet committing
	flushing  *changes      // being committed (nil when no commit runs)
	spare     *changes      // the last commit's, for reuse
	queued    uint64        // changes queued so far
	committed uint64        // changes whose commit has ended (done or failed)
	urgent    bool          // someone waits: commit without waiting out the delay
	commitEnd chan struct{} // closed when the running or next commit ends
	closed    bool

	wake  chan struct{} // something was queued
	hurry chan struct{} // urgent was set
	stop  chan struct{}
	done  chan struct{}
}

func (w *writer) init(s *Store, delay time.Duration, maxQueued int64, onErr func(error)) {
	if delay == 0 {
		delay = DefaultCommitDelay
	}
	if maxQueued <= 0 {
		maxQueued = DefaultMaxQueued
	}
	w.s, w.delay, w.maxQueued, w.onErr = s, delay, maxQueued, onErr
	w.pending, w.spare = newChanges(), newChanges()
	w.commitEnd = make(chan struct{})
	w.wake = make(chan struct{}, 1)
	w.hurry = make(chan struct{}, 1)
	w.stop = make(chan struct{})
	w.done = make(chan struct{})
	go w.run()
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// queue adds c; with a negative delay it waits for c's commit.
func (w *writer) queue(ctx context.Context, c change) error {
	if w.delay < 0 {
		c.res = new(result)
	}
	w.mu.Lock()
	for w.pending.bytes >= w.maxQueued && !w.closed {
		// The disk is not keeping up: wait for the running commit.
		end := w.hurryLocked()
		w.mu.Unlock()
		signal(w.hurry)
		select {
		case <-end:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	first := len(w.pending.list) == 0
	w.pending.add(c)
	w.queued++
	seq := w.queued
	hurry := w.delay < 0 || len(w.pending.list) >= hurryChanges || w.pending.bytes >= hurryBytes
	if hurry {
		w.urgent = true
	}
	w.mu.Unlock()
	if first {
		signal(w.wake)
	}
	if hurry {
		signal(w.hurry)
	}
	if c.res == nil {
		return nil
	}
	if err := w.waitFor(ctx, seq); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return c.res.err
}

// hurryLocked asks for a commit without delay, and returns the channel
// closed when the running or next commit ends; the caller holds w.mu and
// signals w.hurry once it let go of it.
func (w *writer) hurryLocked() chan struct{} {
	w.urgent = true
	return w.commitEnd
}

// waitFor returns once the changes up to seq are committed (or failed).
func (w *writer) waitFor(ctx context.Context, seq uint64) error {
	w.mu.Lock()
	for w.committed < seq {
		end := w.hurryLocked()
		w.mu.Unlock()
		signal(w.hurry)
		select {
		case <-end:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	seq := w.queued
	w.mu.Unlock()
	return w.waitFor(ctx, seq)
}

// lookup returns the latest queued change of id, if one waits.
func (w *writer) lookup(id string) (change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.pending.get(id); ok {
		return c, true
	}
	if w.flushing != nil {
		return w.flushing.get(id)
	}
	return change{}, false
}

// close commits what is queued, refuses what comes later, and stops the
// writer.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	var linger *time.Timer
	if w.delay > 0 {
		linger = time.NewTimer(w.delay)
		linger.Stop()
	}
	for {
		select {
		case <-w.wake:
		case <-w.hurry:
		case <-w.stop:
			for w.commit() {
			}
			return
		}
		w.mu.Lock()
		urgent := w.urgent
		w.mu.Unlock()
		if linger != nil && !urgent {
			linger.Reset(w.delay)
			select {
			case <-linger.C:
			case <-w.hurry:
				linger.Stop()
			case <-w.stop: // commit now; the next round stops
				linger.Stop()
			}
		}
		w.commit()
	}
}

// commit commits the pending changes in one transaction, and says whether
// there were any.
func (w *writer) commit() bool {
	w.mu.Lock()
	q := w.pending
	if len(q.list) == 0 {
		w.mu.Unlock()
		return false
	}
	upto := w.queued
	w.pending, w.spare, w.flushing = w.spare, nil, q
	w.urgent = false
	w.mu.Unlock()

	errs := w.apply(q.list)
	if w.onErr != nil { // before the commit ends: a Flush that returned saw them reported
		for i, err := range errs {
			if err != nil {
				w.onErr(fmt.Errorf("boltstore: response %q was not stored: %w", q.list[i].id, err))
			}
		}
	}

	w.mu.Lock()
	for i, err := range errs {
		if err != nil {
			q.list[i].res.set(err)
		}
	}
	w.flushing = nil
	w.committed = upto
	close(w.commitEnd)
	w.commitEnd = make(chan struct{})
	w.mu.Unlock()

	q.reset()
	w.mu.Lock()
	w.spare = q
	w.mu.Unlock()
	return true
}

// apply commits list in one transaction, or, when that fails, each change
// in one of its own; it returns the changes' errors (nil: none failed).
func (w *writer) apply(list []change) []error {
	s := w.s
	run := func(list []change) error {
		return s.db.Update(func(tx *bolt.Tx) error {
			b := newBatch(tx)
			now := time.Now()
			for i := range list {
				if err := b.apply(&list[i], s.maxBytes, now); err != nil {
					return err
				}
			}
			return b.finish()
		})
	}
	err := run(list)
	if err == nil {
		return nil
	}
	errs := make([]error, len(list))
	if len(list) == 1 {
		errs[0] = err
		return errs
	}
	for i := range list {
		errs[i] = run(list[i : i+1])
	}
	return errs
}
