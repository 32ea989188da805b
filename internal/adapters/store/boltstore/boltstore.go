// Package boltstore is the embedded ports.ResponseStore, the default: one
// file in a data directory, nothing to set up, and what it holds survives
// a restart. It serves one process: a second one opening the same file
// fails (see Open). Several replicas share responses through redisstore.
//
// It is built on bbolt (go.etcd.io/bbolt, the B+tree store under etcd):
// pure Go, so the static CGO_ENABLED=0 binary keeps working; one file;
// ACID transactions, so a response, its index entries and the size
// counter change together or not at all; crash-safe (copy-on-write pages
// and an fsync per committed write, so a crash loses at most the Put that
// was under way, never the file); and mature, under etcd and many others
// for years.
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
// id) for all records. Bucket "meta" keeps the layout version and the
// running count and byte total.
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
// short: one record, or a bounded batch of a sweep).
//
// # Size cap
//
// Options.MaxBytes caps the total StoredResponse.Size() (id + response +
// input bytes) of the records kept. When a Put would take the total over
// it, records are evicted, in the same transaction, until the new one
// fits: first the records that expire first (expired ones therefore go
// before any live one), then, when no expiring record is left, the
// records with the oldest CreatedAt (ties by id). A record that is on its
// own bigger than the cap is refused with an error wrapping ErrTooLarge,
// and the store is left as it was. The file itself is larger than the
// total: bbolt adds page overhead and keeps freed pages for reuse instead
// of shrinking the file, so give the disk some room over MaxBytes (about
// twice is comfortable).
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
	// OnSweepError, if set, is told of each failed background sweep.
	OnSweepError func(error)
}

// Store is a ports.ResponseStore in one bbolt file. Its methods are safe
// for concurrent use.
type Store struct {
	db        *bolt.DB
	path      string
	maxBytes  int64
	onErr     func(error)
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ ports.ResponseStore = (*Store)(nil)

// Open opens the store file at path, creating it and its directory if
// needed, and starts the sweeper. When another process has the file open,
// Open fails after Options.LockTimeout with an error that wraps ErrLocked
// and says so.
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
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, FreelistType: bolt.FreelistMapType})
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

// Close stops the sweeper and closes the file. Later calls return the
// first one's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		select {
		case <-s.done: // no sweeper
		default:
			close(s.stop)
			<-s.done
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Path is the store file's path.
func (s *Store) Path() string { return s.path }

// Put stores r, replacing the response with the same id. A response whose
// ExpiresAt has already come only removes the one it replaces.
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
	val := record.Append(nil, r)
	id := []byte(r.ID)
	now := time.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		if old := b.responses.Get(id); old != nil {
			if err := b.remove(id, old); err != nil {
				return err
			}
		}
		if expired(r.ExpiresAt, now) {
			return nil
		}
		if s.maxBytes > 0 {
			if err := b.evictFor(size, s.maxBytes); err != nil {
				return err
			}
		}
		return b.insert(id, val, r, size)
	})
	if err != nil {
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
// removed all the same).
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key := []byte(id)
	now := time.Now()
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		old := b.responses.Get(key)
		if old == nil {
			return nil
		}
		exp, err := record.ExpiresAt(old)
		if err != nil {
			return err
		}
		found = !expired(exp, now)
		return b.remove(key, old)
	})
	if err != nil {
		return fmt.Errorf("boltstore: delete %q: %w", id, err)
	}
	if !found {
		return domain.ErrResponseNotFound
	}
	return nil
}

// Stats is what a Store holds.
type Stats struct {
	Responses int   // records, expired ones not yet swept included
	Bytes     int64 // their total StoredResponse.Size(), what MaxBytes caps
}

// Stats reports what the store holds.
func (s *Store) Stats() (Stats, error) {
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
// The background sweeper calls it; so may a caller that disabled it.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n := 0
		now := sortKey(time.Now())
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := bucketsOf(tx)
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
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("boltstore: sweep: %w", err)
		}
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

// buckets are one transaction's buckets.
type buckets struct {
	responses, byExpiry, byCreated, meta *bolt.Bucket
}

func bucketsOf(tx *bolt.Tx) buckets {
	return buckets{
		responses: tx.Bucket(bucketResponses),
		byExpiry:  tx.Bucket(bucketByExpiry),
		byCreated: tx.Bucket(bucketByCreated),
		meta:      tx.Bucket(bucketMeta),
	}
}

func (b buckets) insert(id, val []byte, r domain.StoredResponse, size int64) error {
	if err := b.responses.Put(id, val); err != nil {
		return err
	}
	if !r.ExpiresAt.IsZero() {
		if err := b.byExpiry.Put(indexKey(r.ExpiresAt, id), nil); err != nil {
			return err
		}
	}
	if err := b.byCreated.Put(indexKey(r.CreatedAt, id), nil); err != nil {
		return err
	}
	return b.account(1, size)
}

// remove deletes the record val stored under id, and its index entries.
func (b buckets) remove(id, val []byte) error {
	r, err := record.Decode(string(id), val)
	if err != nil {
		// Unreadable: drop it anyway (its index entries, which cannot be
		// found without it, are dropped when the sweeper or eviction meets
		// them without their record).
		return b.responses.Delete(id)
	}
	size := int64(r.Size())
	if !r.ExpiresAt.IsZero() {
		if err := b.byExpiry.Delete(indexKey(r.ExpiresAt, id)); err != nil {
			return err
		}
	}
	if err := b.byCreated.Delete(indexKey(r.CreatedAt, id)); err != nil {
		return err
	}
	if err := b.responses.Delete(id); err != nil {
		return err
	}
	return b.account(-1, -size)
}

// evictFor removes records, those that expire first and then the oldest,
// until size more bytes fit under limit.
func (b buckets) evictFor(size, limit int64) error {
	for int64(getUint(b.meta, metaBytes))+size > limit {
		k, _ := b.byExpiry.Cursor().First()
		index := b.byExpiry
		if k == nil {
			k, _ = b.byCreated.Cursor().First()
			index = b.byCreated
		}
		if k == nil {
			// Nothing left to evict: the counter disagrees with the
			// records (it cannot, but never loop on it).
			return b.account(-int64(getUint(b.meta, metaCount)), -int64(getUint(b.meta, metaBytes)))
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

func (b buckets) account(count, size int64) error {
	if err := putUint(b.meta, metaCount, addClamped(getUint(b.meta, metaCount), count)); err != nil {
		return err
	}
	return putUint(b.meta, metaBytes, addClamped(getUint(b.meta, metaBytes), size))
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
// order.
func indexKey(t time.Time, id []byte) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, sortKey(t))
	return append(k, id...)
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
