package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/redisstore"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/redisstore/redistest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/storetest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

var prefixes atomic.Int64

// uniquePrefix keeps each test's keys apart on the one shared server.
func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("test:%d:%s:", prefixes.Add(1), t.Name())
}

func openStore(t *testing.T, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), redistest.URL(t), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawClient talks to the test server directly, to look at what a store
// wrote.
func rawClient(t *testing.T) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ports.ResponseStore {
		return openStore(t, uniquePrefix(t))
	})
}

// Two Store values on one Redis, as two replicas of the service have: what
// one stores or deletes, the other sees.
func TestTwoReplicasShareResponses(t *testing.T) {
	ctx := context.Background()
	prefix := uniquePrefix(t)
	a, b := openStore(t, prefix), openStore(t, prefix)
	r := storetest.Response("resp_shared")
	r.ExpiresAt = time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := a.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, r.ID)
	if err != nil {
		t.Fatalf("replica b does not see what a stored: %v", err)
	}
	if d := storetest.Equal(got, r); d != "" {
		t.Fatal(d)
	}
	r2 := storetest.Response("resp_shared")
	r2.Response = []byte(`{"status":"replaced by b"}`)
	if err := b.Put(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, r.ID); err != nil || storetest.Equal(got, r2) != "" {
		t.Fatalf("replica a does not see b's replacement: %v %s", err, storetest.Equal(got, r2))
	}
	if err := b.Delete(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, r.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("replica a still sees what b deleted: %v", err)
	}
	if err := a.Delete(ctx, r.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("a's Delete after b's = %v, want ErrResponseNotFound", err)
	}

	// A store with another prefix is another namespace.
	other := openStore(t, uniquePrefix(t))
	if err := a.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(ctx, r.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("a store with another prefix sees it: %v", err)
	}
}

// The expiry is Redis's own: a PXAT on the key, which PTTL shows; a
// replace without ExpiresAt clears it; one key per response, a string.
func TestTTLIsOnTheKey(t *testing.T) {
	ctx := context.Background()
	prefix := uniquePrefix(t)
	s := openStore(t, prefix)
	raw := rawClient(t)
	r := storetest.Response("resp_ttl")
	r.ExpiresAt = time.Now().Add(time.Minute)
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	key := prefix + r.ID
	if s.Key(r.ID) != key {
		t.Fatalf("Key = %q, want %q", s.Key(r.ID), key)
	}
	pttl, err := raw.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl < 58*time.Second || pttl > time.Minute {
		t.Fatalf("PTTL = %v, want just under a minute", pttl)
	}
	if exp, err := raw.PExpireTime(ctx, key).Result(); err != nil || exp != time.Duration(r.ExpiresAt.UnixMilli())*time.Millisecond {
		t.Fatalf("PEXPIRETIME = %v, %v; want ExpiresAt in ms, %d", exp, err, r.ExpiresAt.UnixMilli())
	}
	keys, err := raw.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("keys under the prefix: %q, %v; want just %q", keys, err, key)
	}
	if typ, _ := raw.Type(ctx, key).Result(); typ != "string" {
		t.Fatalf("TYPE = %q, want string (one encoded value)", typ)
	}

	r.ExpiresAt = time.Time{}
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if pttl, _ := raw.PTTL(ctx, key).Result(); pttl != -1 {
		t.Fatalf("after a replace without ExpiresAt, PTTL = %v, want -1 (no expiry)", pttl)
	}

	r.ExpiresAt = time.Now().Add(-time.Second)
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, _ := raw.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("a Put already expired left the key")
	}
}

func TestDefaultPrefix(t *testing.T) {
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redistest.URL(t), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := "resp_default_prefix_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := s.Put(ctx, storetest.Response(id)); err != nil {
		t.Fatal(err)
	}
	defer s.Delete(ctx, id)
	if n, err := rawClient(t).Exists(ctx, "chatgpt-api:response:"+id).Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS chatgpt-api:response:%s = %d, %v", id, n, err)
	}
}

func checkOpenError(t *testing.T, err error, took time.Duration, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Open succeeded")
	}
	msg := err.Error()
	t.Logf("Open: %s", msg)
	if strings.Contains(msg, "s3cret") {
		t.Errorf("the error shows the password: %s", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
	if took > 10*time.Second {
		t.Errorf("Open took %v to fail", took)
	}
}

func TestOpenUnreachable(t *testing.T) {
	port, err := redistest.FreePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	start := time.Now()
	_, err = redisstore.Open(context.Background(), "redis://user:s3cret@"+addr+"/0", redisstore.Options{})
	checkOpenError(t, err, time.Since(start), "redis://user:xxxxx@"+addr+"/0", "unreachable", "connection refused")
}

// The server lets the default user in with any password, so the test
// names a user it does not have.
func TestOpenWrongCredentials(t *testing.T) {
	u := strings.Replace(redistest.URL(t), "redis://", "redis://nobody:s3cret@", 1)
	start := time.Now()
	_, err := redisstore.Open(context.Background(), u, redisstore.Options{})
	checkOpenError(t, err, time.Since(start), "redis://nobody:xxxxx@", "refused", "WRONGPASS")
}

func TestOpenBadURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://user:s3cret@127.0.0.1:6379/0", "invalid URL scheme"},
		{"redis://:s3cret@127.0.0.1:6379/notanumber", "invalid database number"},
		{"redis://:s3cret@127.0.0.1:6379/0?dial_timeout=forever", "dial_timeout"},
		{"redis://:s3cret@[::1", "not shown"},
		{"127.0.0.1:6379", "redisstore: Redis URL"},
	} {
		start := time.Now()
		_, err := redisstore.Open(context.Background(), tc.url, redisstore.Options{})
		checkOpenError(t, err, time.Since(start), tc.want)
	}
}

// A cancelled context ends Open at once too.
func TestOpenCancelled(t *testing.T) {
	url := redistest.URL(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := redisstore.Open(ctx, url, redisstore.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Open = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Open took %v", took)
	}
}
