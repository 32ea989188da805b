// Package redisstore is the ports.ResponseStore for several replicas: each
// opens the same Redis (github.com/redis/go-redis/v9), so a response one
// replica stored is there for the request that another replica serves.
//
// # Keys
//
// One key per response: Options.Prefix (default DefaultPrefix) followed by
// the response id, exactly as given (Redis keys are binary-safe). Its value
// is one string holding both documents and the times, in the compact
// binary encoding of package record (a varint header, then the response
// and input documents as they are), the one boltstore uses too. One
// encoded value rather than a hash with a field per part: a single SET
// writes the value and its expiry together, atomically, and replaces
// whatever the key held, its old expiry included, where a hash would need
// MULTI/EXEC around DEL, HSET and PEXPIREAT; and a single GET reads it
// back.
//
// # Expiry
//
// Put sends SET key value PXAT <ExpiresAt in Unix ms> (SET key value, no
// expiry, for a zero ExpiresAt), so Redis itself drops the key when it
// expires, by Redis's clock; Get also hides a record whose ExpiresAt has
// passed by the replica's clock. A Put whose ExpiresAt has already come
// deletes the key instead. PXAT needs Redis 6.2 or later.
//
// # Size
//
// The store sets no size limit of its own: Redis's are the ones that
// count. Give the Redis a maxmemory and a volatile-* eviction policy:
// volatile-ttl evicts the responses that expire first (what boltstore's
// MaxBytes does), volatile-lru or volatile-lfu the least used among those
// with an expiry. Under any volatile-* policy a response stored without an
// ExpiresAt is never evicted; under noeviction (Redis's default) a Put
// into a full Redis fails with Redis's OOM error, which Put returns. When
// the Redis also holds data that must never be evicted, give the responses
// a Redis (or database) of their own.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/internal/record"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// DefaultPrefix starts every key when Options.Prefix is empty.
const DefaultPrefix = "chatgpt-api:response:"

// Options tune a Store; the zero value is a working default.
type Options struct {
	// Prefix starts every key; "": DefaultPrefix. Replicas that share
	// responses must use the same one.
	Prefix string
}

// Store is a ports.ResponseStore in Redis. Its methods are safe for
// concurrent use.
type Store struct {
	rdb    *redis.Client
	prefix string
}

var _ ports.ResponseStore = (*Store)(nil)

// Open connects to the Redis at rawURL, a redis:// or rediss:// (TLS) URL
// as redis.ParseURL reads it (redis://[user:password@]host:port/db, with
// options such as dial_timeout as query parameters; unix:// for a socket
// works too), and pings it once. An unparsable URL, an unreachable Redis
// or one that refuses the URL's credentials is an error that names the
// URL with its password hidden.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	shown := Redact(rawURL)
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, password and all
		}
		return nil, fmt.Errorf("redisstore: Redis URL %s: %w (want redis://[user:password@]host:port/db, rediss://… or unix://…)", shown, err)
	}
	rdb := redis.NewClient(o)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		var rerr redis.Error
		if errors.As(err, &rerr) { // Redis answered, but no
			return nil, fmt.Errorf("redisstore: Redis at %s refused the connection (check the URL's user, password and database): %w", shown, err)
		}
		return nil, fmt.Errorf("redisstore: Redis at %s is unreachable (PING failed): %w", shown, err)
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: prefix}, nil
}

// Redact returns rawURL with its password replaced by "xxxxx", or a
// placeholder when it does not even parse as a URL.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(an unparsable URL, not shown)"
	}
	return u.Redacted()
}

// Close closes the connections to Redis.
func (s *Store) Close() error { return s.rdb.Close() }

// Key is the Redis key of the response id.
func (s *Store) Key(id string) string { return s.prefix + id }

// Put stores r under its key, replacing what was there, expiring at
// r.ExpiresAt.
func (s *Store) Put(ctx context.Context, r domain.StoredResponse) error {
	if r.ID == "" {
		return errors.New("redisstore: put: empty response id")
	}
	key := s.Key(r.ID)
	var err error
	switch {
	case r.ExpiresAt.IsZero():
		err = s.rdb.Set(ctx, key, record.Append(nil, r), 0).Err()
	case !time.Now().Before(r.ExpiresAt):
		err = s.rdb.Del(ctx, key).Err() // already expired
	default:
		err = s.rdb.Do(ctx, "set", key, record.Append(nil, r), "pxat", r.ExpiresAt.UnixMilli()).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: put %q: %w", r.ID, err)
	}
	return nil
}

// Get returns the response with id, or domain.ErrResponseNotFound when
// there is none or it expired.
func (s *Store) Get(ctx context.Context, id string) (domain.StoredResponse, error) {
	val, err := s.rdb.Get(ctx, s.Key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return domain.StoredResponse{}, domain.ErrResponseNotFound
	}
	if err != nil {
		return domain.StoredResponse{}, fmt.Errorf("redisstore: get %q: %w", id, err)
	}
	r, err := record.Decode(id, val) // val is this call's own copy
	if err != nil {
		return domain.StoredResponse{}, fmt.Errorf("redisstore: get %q: %w", id, err)
	}
	if !r.ExpiresAt.IsZero() && !time.Now().Before(r.ExpiresAt) {
		return domain.StoredResponse{}, domain.ErrResponseNotFound
	}
	return r, nil
}

// Delete removes the response with id (DEL), or returns
// domain.ErrResponseNotFound when there was no such key.
func (s *Store) Delete(ctx context.Context, id string) error {
	n, err := s.rdb.Del(ctx, s.Key(id)).Result()
	if err != nil {
		return fmt.Errorf("redisstore: delete %q: %w", id, err)
	}
	if n == 0 {
		return domain.ErrResponseNotFound
	}
	return nil
}
