// Package boltstore is the embedded ports.ResponseStore, the default: one
// file in a data directory, nothing to set up, and what it holds survives
// a restart. It serves one process: a second one opening the same file
// fails (see Open). Several replicas share responses through redisstore.
//
// It is built on bbolt (go.etcd.io/bbolt, the B+tree store under etcd):
// pure Go, so the static CGO_ENABLED=0 binary keeps working; one file;
// ACID transactions, so a response, its index entries and the size
// counter change together or not at all; crash-safe (copy-on-write pages
// and an fsync per committed transaction, so a crash never damages the
// file); and mature, under etcd and many others for years.
//
// # Writes: group commits behind the calls
//
// A bbolt commit costs two fsyncs (about 1 ms each on a typical disk) and
// a few hundred microseconds of CPU, whatever it carries; one writer runs
// at a time. A commit per Put would put that on every response (the
// stream's end waits for its save) and serialise concurrent ones.
// Instead Put and Delete queue their change in memory and return: Get,
// Delete, Stats and Sweep see it at once (the queue is consulted before
// the file), and a background writer commits what has queued, every
// Options.CommitDelay (DefaultCommitDelay), in one transaction and one
// fsync for all of them. A commit whose transaction fails is retried one
// change per transaction, so that one bad change costs only itself;
// what still fails is dropped (Get no longer finds it) and reported to
// Options.OnWriteError.
//
// Durability: what Put accepted is on disk at most CommitDelay plus one
// commit later. A graceful stop (Close) commits everything queued first,
// so a restart loses nothing; a crash of the process, or of the machine,
// loses the changes of that last moment (never the file, nor anything
// committed before). Flush commits what is queued and waits for it. A
// negative CommitDelay makes every Put and Delete wait for its own commit
// (concurrent ones still share one), for deployments that want each
// stored response on disk before the answer ends, at a commit's latency
// per response.
//
// bbolt runs with its hash-map freelist and without writing the freelist
// to the file (NoFreelistSync): a commit writes only the pages it
// changed, and Open rebuilds the freelist by scanning the file instead
// (a read of the page headers, proportional to the file's size).
//
// # Layout
//
// Bucket "responses" maps each id to its record, in the compact binary
// encoding of package record (varint header, then both documents as they
// are; chosen over JSON, which would base64 the documents, and gob, which
// writes a type description and uses reflection). Two index buckets order
// the records without scanning them: "by_expiry" (expiry time, 8 bytes
// big-endian, then the id) for the records that expire, which the sweeper
// and eviction walk from the front, and "by_created" (CreatedAt, then the
// id) for the records that never expire, which eviction walks once no
// expiring record is left. (Layout version 1 files also index expiring
// records by creation; those entries are removed with their records, and
// eviction never reaches them while an expiring record is left.) Bucket
// "meta" keeps the layout version and the running count and byte total.
//
// # Expiry
//
// Get and Delete treat a record whose ExpiresAt has come as absent at
// once; a background sweeper (Options.SweepInterval; once right after
// Open, then every interval, until Close) deletes expired records through
// the expiry index, in batches of short write transactions.
//
// # Contexts
//
// Each call checks its context before it starts and returns ctx.Err() if
// it is done; a bbolt transaction, once begun, runs to its end (they are
// short: one commit of queued changes, or a bounded batch of a sweep).
// Put and Delete wait only when the queue is full (the disk is not
// keeping up) or CommitDelay is negative; they stop waiting when ctx is
// done.
//
// # Size cap
//
// Options.MaxBytes caps the total StoredResponse.Size() (id + response +
// input bytes) of the records kept. When a commit would take the total
// over it, records are evicted, in the same transaction, until the new
// one fits: first the records that expire first (expired ones therefore
// go before any live one), then, when no expiring record is left, the
// records with the oldest CreatedAt (ties by id). A record that is on its
// own bigger than the cap is refused by Put with an error wrapping
// ErrTooLarge, and the store is left as it was. The file itself is larger
// than the total: bbolt adds page overhead and keeps freed pages for reuse
// instead of shrinking the file, so give the disk some room over MaxBytes
// (about twice is comfortable). Records waiting in the queue count once
// committed.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/internal/record"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// FileName is the name a caller gives the store file in its data
// directory: Open(filepath.Join(dataDir, boltstore.FileName), opts).
const FileName = "responses.db"

// Defaults for the zero Options.
const (
	DefaultSweepInterval = time.Minute
	DefaultLockTimeout   = time.Second
	DefaultCommitDelay   = 100 * time.Millisecond
	// DefaultMaxQueued is the size of the changes that may wait for a
	// commit before Put and Delete wait for one.
	DefaultMaxQueued = 64 << 20
)

// layoutVersion is kept in the meta bucket; Open refuses another one.
const layoutVersion = 1

// sweepBatch bounds the records one sweep transaction deletes, so that a
// sweep never holds the write lock for long.
const sweepBatch = 1000

var (
	// ErrLocked is wrapped by Open's error when another process holds the
	// file.
	ErrLocked = errors.New("the response store file is locked by another process")
	// ErrTooLarge is wrapped by Put's error for a response bigger than
	// Options.MaxBytes on its own.
	ErrTooLarge = errors.New("response larger than the store's size cap")
	// ErrClosed is wrapped by the error of a Put or Delete after Close.
	ErrClosed = errors.New("the response store is closed")
)

var (
	bucketResponses = []byte("responses")
	bucketByExpiry  = []byte("by_expiry")
	bucketByCreated = []byte("by_created")
	bucketMeta      = []byte("meta")

	metaVersion = []byte("version")
	metaCount   = []byte("count")
	metaBytes   = []byte("bytes")
)

// Options tune a Store; the zero value is a working default.
type Options struct {
	// MaxBytes caps the total size of the responses kept (see the package
	// doc for what counts and what is evicted); 0: no cap.
	MaxBytes int64
	// SweepInterval is how often expired responses are deleted; 0:
	// DefaultSweepInterval; negative: never in the background (Get still
	// hides them, and Sweep deletes them on demand).
	SweepInterval time.Duration
	// LockTimeout is how long Open waits for the file lock that another
	// process may hold; 0: DefaultLockTimeout.
	LockTimeout time.Duration
	// CommitDelay is how long a change Put or Delete queued may wait for
	// its commit, which it shares with every change queued meanwhile: the
	// most a crash can lose. 0: DefaultCommitDelay; negative: Put and
	// Delete return only once their change is committed and synced.
	CommitDelay time.Duration
	// MaxQueued bounds the bytes of queued changes: a Put or Delete that
	// finds more waits for a commit. 0: DefaultMaxQueued.
	MaxQueued int64
	// OnSweepError, if set, is told of each failed background sweep.
	OnSweepError func(error)
	// OnWriteError, if set, is told of each change Put or Delete queued
	// that could not be committed (the error names the response); unset,
	// OnSweepError is told instead.
	OnWriteError func(error)
}

// Store is a ports.ResponseStore in one bbolt file. Its methods are safe
// for concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	maxBytes int64
	onErr    func(error)
	stop     chan struct{}
	done     chan struct{}

	w writer

	closeOnce sync.Once
	closeErr  error
}

var _ ports.ResponseStore = (*Store)(nil)

// Open opens the store file at path, creating it and its directory if
// needed, and starts the sweeper and the writer. When another process
// has the file open, Open fails after Options.LockTimeout with an error
// that wraps ErrLocked and says so.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("boltstore: no file path")
	}
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("boltstore: MaxBytes %d is negative", opts.MaxBytes)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: creating the data directory: %w", err)
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: %s: %w (no lock within %v): an embedded store serves one process; "+
			"stop the other one, give each its own data directory, or share responses through Redis: %w",
			path, ErrLocked, timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: opening %s: %w", path, err)
	}
	if err := db.Update(initBuckets); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: %s: %w", path, err)
	}
	s := &Store{
		db:       db,
		path:     path,
		maxBytes: opts.MaxBytes,
		onErr:    opts.OnSweepError,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	onWrite := opts.OnWriteError
	if onWrite == nil {
		onWrite = opts.OnSweepError
	}
	s.w.init(s, opts.CommitDelay, opts.MaxQueued, onWrite)
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval > 0 {
		go s.sweepLoop(interval)
	} else {
		close(s.done)
	}
	return s, nil
}

func initBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketResponses, bucketByExpiry, bucketByCreated, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(metaVersion); v != nil {
		if len(v) != 8 || binary.BigEndian.Uint64(v) != layoutVersion {
			return fmt.Errorf("layout version %x, this build reads %d", v, layoutVersion)
		}
		return nil
	}
	return putUint(meta, metaVersion, layoutVersion)
}

// Close commits every queued change, stops the sweeper and the writer,
// and closes the file. Put and Delete fail after it. Later calls return
// the first one's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		select {
		case <-s.done: // no sweeper
		default:
			close(s.stop)
			<-s.done
		}
		s.w.close()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Path is the store file's path.
func (s *Store) Path() string { return s.path }

// Put stores r, replacing the response with the same id. A response whose
// ExpiresAt has already come only removes the one it replaces. The change
// is seen at once and committed within Options.CommitDelay (see the
// package doc).
func (s *Store) Put(ctx context.Context, r domain.StoredResponse) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.ID == "" {
		return errors.New("boltstore: put: empty response id")
	}
	size := int64(r.Size())
	if s.maxBytes > 0 && size > s.maxBytes {
		return fmt.Errorf("boltstore: put %q: %w: %d bytes, the cap (MaxBytes) is %d", r.ID, ErrTooLarge, size, s.maxBytes)
	}
	c := change{id: r.ID, created: r.CreatedAt, expires: r.ExpiresAt, size: size}
	if !expired(r.ExpiresAt, time.Now()) {
		c.val = record.Append(nil, r)
	}
	if err := s.w.queue(ctx, c); err != nil {
		return fmt.Errorf("boltstore: put %q: %w", r.ID, err)
	}
	return nil
}

// Get returns the response with id, or domain.ErrResponseNotFound when
// there is none or its ExpiresAt has come.
func (s *Store) Get(ctx context.Context, id string) (domain.StoredResponse, error) {
	if err := ctx.Err(); err != nil {
		return domain.StoredResponse{}, err
	}
	var val []byte
	if c, ok := s.w.lookup(id); ok {
		if c.val == nil || expired(c.expires, time.Now()) {
			return domain.StoredResponse{}, domain.ErrResponseNotFound
		}
		val = bytes.Clone(c.val) // c.val is never written, but shared
	} else {
		err := s.db.View(func(tx *bolt.Tx) error {
			if v := tx.Bucket(bucketResponses).Get([]byte(id)); v != nil {
				val = bytes.Clone(v) // v lives only as long as the transaction
			}
			return nil
		})
		if err != nil {
			return domain.StoredResponse{}, fmt.Errorf("boltstore: get %q: %w", id, err)
		}
		if val == nil {
			return domain.StoredResponse{}, domain.ErrResponseNotFound
		}
	}
	r, err := record.Decode(id, val)
	if err != nil {
		return domain.StoredResponse{}, fmt.Errorf("boltstore: get %q: %w", id, err)
	}
	if expired(r.ExpiresAt, time.Now()) {
		return domain.StoredResponse{}, domain.ErrResponseNotFound
	}
	return r, nil
}

// Delete removes the response with id, or returns
// domain.ErrResponseNotFound when there is none or it had expired (it is
// removed all the same). Like Put, it is seen at once and committed
// within Options.CommitDelay.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	var found, present bool
	if c, ok := s.w.lookup(id); ok {
		present = c.val != nil
		found = present && !expired(c.expires, now)
	} else {
		err := s.db.View(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketResponses).Get([]byte(id))
			if v == nil {
				return nil
			}
			present = true
			exp, err := record.ExpiresAt(v)
			found = err == nil && !expired(exp, now)
			return nil
		})
		if err != nil {
			return fmt.Errorf("boltstore: delete %q: %w", id, err)
		}
	}
	if present {
		if err := s.w.queue(ctx, change{id: id}); err != nil {
			return fmt.Errorf("boltstore: delete %q: %w", id, err)
		}
	}
	if !found {
		return domain.ErrResponseNotFound
	}
	return nil
}

// Flush commits every change queued before it was called, and returns
// once they are on disk (or ctx is done). Close flushes; a caller needs
// Flush only for a durability point of its own.
func (s *Store) Flush(ctx context.Context) error { return s.w.flush(ctx) }

// Stats is what a Store holds.
type Stats struct {
	Responses int   // records, expired ones not yet swept included
	Bytes     int64 // their total StoredResponse.Size(), what MaxBytes caps
}

// Stats reports what the store holds, queued changes committed first.
func (s *Store) Stats() (Stats, error) {
	if err := s.Flush(context.Background()); err != nil {
		return Stats{}, err
	}
	var st Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st.Responses = int(getUint(meta, metaCount))
		st.Bytes = int64(getUint(meta, metaBytes))
		return nil
	})
	return st, err
}

// Sweep deletes the responses whose ExpiresAt has come and says how many.
// The background sweeper calls it; so may a caller that disabled it. It
// commits the queued changes first.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if err := s.Flush(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n := 0
		now := sortKey(time.Now())
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := newBatch(tx)
			c := b.byExpiry.Cursor()
			for k, _ := c.First(); k != nil && n < sweepBatch; k, _ = c.First() {
				if len(k) < 8 {
					return fmt.Errorf("%w: expiry index key %x", record.ErrCorrupt, k)
				}
				if binary.BigEndian.Uint64(k) > now {
					break
				}
				id := bytes.Clone(k[8:])
				val := b.responses.Get(id)
				if val == nil { // an index entry without its record
					if err := b.byExpiry.Delete(k); err != nil {
						return err
					}
					continue
				}
				if err := b.remove(id, val); err != nil {
					return err
				}
				n++
			}
			return b.finish()
		})
		if err != nil {
			return total, fmt.Errorf("boltstore: sweep: %w", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}

func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil && s.onErr != nil {
			s.onErr(err)
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// expired tells whether a record expiring at exp (zero: never) is gone at
// now.
func expired(exp, now time.Time) bool {
	return !exp.IsZero() && !now.Before(exp)
}

// batch is one write transaction's buckets, and the meta counters as the
// transaction has changed them so far (written once, by finish).
type batch struct {
	responses, byExpiry, byCreated, meta *bolt.Bucket

	count, bytes uint64
	changed      bool
	key, id      []byte // scratch for keys (bbolt copies the keys it keeps)
}

func newBatch(tx *bolt.Tx) *batch {
	b := &batch{
		responses: tx.Bucket(bucketResponses),
		byExpiry:  tx.Bucket(bucketByExpiry),
		byCreated: tx.Bucket(bucketByCreated),
		meta:      tx.Bucket(bucketMeta),
	}
	// Records and index entries arrive in time order (the ids begin with
	// the time) and leave oldest first: pages may be filled.
	b.responses.FillPercent, b.byExpiry.FillPercent, b.byCreated.FillPercent = 0.9, 0.9, 0.9
	b.count, b.bytes = getUint(b.meta, metaCount), getUint(b.meta, metaBytes)
	return b
}

// finish writes the counters, when they changed.
func (b *batch) finish() error {
	if !b.changed {
		return nil
	}
	if err := putUint(b.meta, metaCount, b.count); err != nil {
		return err
	}
	return putUint(b.meta, metaBytes, b.bytes)
}

// apply makes one queued change: the record c.val under c.id, replacing
// the one there, or (c.val nil) the removal of that one.
func (b *batch) apply(c *change, maxBytes int64, now time.Time) error {
	b.id = append(b.id[:0], c.id...)
	id := b.id
	if old := b.responses.Get(id); old != nil {
		if err := b.remove(id, old); err != nil {
			return err
		}
	}
	if c.val == nil || expired(c.expires, now) {
		return nil
	}
	if maxBytes > 0 {
		if err := b.evictFor(c.size, maxBytes); err != nil {
			return err
		}
	}
	return b.insert(id, c)
}

func (b *batch) insert(id []byte, c *change) error {
	if err := b.responses.Put(id, c.val); err != nil {
		return err
	}
	if !c.expires.IsZero() {
		if err := b.byExpiry.Put(b.indexKey(c.expires, id), nil); err != nil {
			return err
		}
	} else if err := b.byCreated.Put(b.indexKey(c.created, id), nil); err != nil {
		// Only the records that never expire: eviction reaches the
		// creation index only once no expiring record is left.
		return err
	}
	b.account(1, c.size)
	return nil
}

// remove deletes the record val stored under id, and its index entries.
func (b *batch) remove(id, val []byte) error {
	r, err := record.Decode(string(id), val)
	if err != nil {
		// Unreadable: drop it anyway (its index entries, which cannot be
		// found without it, are dropped when the sweeper or eviction meets
		// them without their record).
		return b.responses.Delete(id)
	}
	size := int64(r.Size())
	if !r.ExpiresAt.IsZero() {
		if err := b.byExpiry.Delete(b.indexKey(r.ExpiresAt, id)); err != nil {
			return err
		}
	}
	// Layout 1 files index expiring records by creation too.
	if err := b.byCreated.Delete(b.indexKey(r.CreatedAt, id)); err != nil {
		return err
	}
	if err := b.responses.Delete(id); err != nil {
		return err
	}
	b.account(-1, -size)
	return nil
}

// evictFor removes records, those that expire first and then the oldest,
// until size more bytes fit under limit.
func (b *batch) evictFor(size, limit int64) error {
	for int64(b.bytes)+size > limit {
		k, _ := b.byExpiry.Cursor().First()
		index := b.byExpiry
		if k == nil {
			k, _ = b.byCreated.Cursor().First()
			index = b.byCreated
		}
		if k == nil {
			// Nothing left to evict: the counter disagrees with the
			// records (it cannot, but never loop on it).
			b.count, b.bytes, b.changed = 0, 0, true
			return nil
		}
		if len(k) < 8 {
			return fmt.Errorf("%w: index key %x", record.ErrCorrupt, k)
		}
		id := bytes.Clone(k[8:])
		if val := b.responses.Get(id); val != nil {
			if err := b.remove(id, val); err != nil {
				return err
			}
		} else if err := index.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (b *batch) account(count, size int64) {
	b.count = addClamped(b.count, count)
	b.bytes = addClamped(b.bytes, size)
	b.changed = true
}

func addClamped(v uint64, d int64) uint64 {
	if d < 0 && uint64(-d) > v {
		return 0
	}
	return uint64(int64(v) + d)
}

func getUint(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// indexKey is t's sort key, then id: the index buckets' keys, in time
// order. It is valid until the next call (bbolt copies the keys it
// keeps).
func (b *batch) indexKey(t time.Time, id []byte) []byte {
	b.key = binary.BigEndian.AppendUint64(b.key[:0], sortKey(t))
	b.key = append(b.key, id...)
	return b.key
}

var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// sortKey maps t to a uint64 whose big-endian bytes sort as the times do:
// Unix nanoseconds (clamped to what an int64 holds; the zero time is the
// smallest) with the sign bit flipped.
func sortKey(t time.Time) uint64 {
	var n int64
	switch {
	case t.IsZero() || t.Before(minNano):
		n = math.MinInt64
	case t.After(maxNano):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return uint64(n) ^ (1 << 63)
}
