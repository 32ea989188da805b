package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/boltstore"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/storetest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// A change is seen at once, however far away its commit, and Close
// commits it: a graceful restart loses nothing.
func TestCloseCommitsQueuedChanges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), boltstore.FileName)
	s, err := boltstore.Open(path, boltstore.Options{CommitDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	gone := storetest.Response("resp_gone")
	if err := s.Put(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil { // committed, then deleted in the queue
		t.Fatal(err)
	}
	var kept []domain.StoredResponse
	for i := range 50 {
		r := storetest.Response(fmt.Sprintf("resp_%02d", i))
		r.ExpiresAt = time.Now().Add(time.Hour).Round(0)
		kept = append(kept, r)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, r.ID)
		if err != nil || storetest.Equal(got, r) != "" {
			t.Fatalf("Get right after Put: %v %s", err, storetest.Equal(got, r))
		}
	}
	if err := s.Delete(ctx, gone.ID); err != nil {
		t.Fatalf("Delete of a committed response: %v", err)
	}
	if _, err := s.Get(ctx, gone.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("Get after a queued Delete: %v", err)
	}
	if err := s.Delete(ctx, gone.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("second Delete: %v, want ErrResponseNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, storetest.Response("resp_late")); !errors.Is(err, boltstore.ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}

	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range kept {
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatalf("after reopen, Get(%q): %v", want.ID, err)
		}
		if d := storetest.Equal(got, want); d != "" {
			t.Fatalf("after reopen, Get(%q): %s", want.ID, d)
		}
	}
	if _, err := s.Get(ctx, gone.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("after reopen, the deleted response: %v", err)
	}
	if st, _ := s.Stats(); st.Responses != len(kept) {
		t.Fatalf("Stats after reopen = %+v, want %d responses", st, len(kept))
	}
}

// Concurrent Puts that wait for their commits (a negative CommitDelay)
// share them, and each returns once its record is on disk.
func TestCommitEachPutGroupsConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), boltstore.FileName)
	s, err := boltstore.Open(path, boltstore.Options{CommitDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if err := s.Put(ctx, storetest.Response(fmt.Sprintf("resp_%02d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if st, _ := s.Stats(); st.Responses != 40 {
		t.Fatalf("Stats = %+v, want 40", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A full queue makes Put wait for a commit rather than grow without
// bound, and the commit comes at once, not after CommitDelay.
func TestFullQueueCommitsAtOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, boltstore.Options{CommitDelay: time.Hour, MaxQueued: 1})
	start := time.Now()
	for i := range 20 {
		if err := s.Put(ctx, storetest.Response(fmt.Sprintf("resp_%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("20 Puts into a full queue took %v", took)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	for i := 0; ; i++ { // a Put waiting for room gives up when its context ends
		err := s.Put(cctx, storetest.Response(fmt.Sprintf("resp_x%d", i)))
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > 10000 {
			t.Fatal("a Put into a full queue never gave up on its context")
		}
	}
	if st, _ := s.Stats(); st.Responses < 20 {
		t.Fatalf("Stats = %+v, want at least 20", st)
	}
}

// A change the store cannot commit costs only itself: the others of its
// transaction are committed, and the failure is reported with the id.
func TestFailedChangeIsReportedAlone(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var reported []string
	s, _ := openTemp(t, boltstore.Options{CommitDelay: time.Hour, MaxBytes: 1 << 20, OnWriteError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err.Error())
	}})
	ok := storetest.Response("resp_ok")
	if err := s.Put(ctx, ok); err != nil {
		t.Fatal(err)
	}
	// Corrupt: an index entry too short to hold a time, which eviction
	// meets first.
	if err := boltstore.CorruptExpiryIndex(s); err != nil {
		t.Fatal(err)
	}
	big := storetest.Response("resp_big")
	big.Response = make([]byte, 1<<20-100)  // with resp_ok, over the cap
	if err := s.Put(ctx, big); err != nil { // needs eviction, which fails
		t.Fatal(err)
	}
	other := storetest.Response("resp_other")
	if err := s.Put(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got, n := strings.Join(reported, "\n"), len(reported)
	mu.Unlock()
	if n != 1 || !strings.Contains(got, "resp_big") || !strings.Contains(got, "corrupt") {
		t.Fatalf("reported %q, want one error naming resp_big", got)
	}
	if _, err := s.Get(ctx, big.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("Get of the change that failed: %v", err)
	}
	for _, r := range []domain.StoredResponse{ok, other} {
		if _, err := s.Get(ctx, r.ID); err != nil {
			t.Fatalf("Get(%q): %v", r.ID, err)
		}
	}
}
