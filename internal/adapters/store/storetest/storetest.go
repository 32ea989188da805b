// Package storetest is the contract every ports.ResponseStore owes the
// service, as one test suite run against each implementation (boltstore,
// redisstore, and each one added later): bytes kept exactly (large and
// binary documents too), replace, delete, ErrResponseNotFound for what is
// absent, deleted or expired, expiry on time and never for a zero
// ExpiresAt, safety under concurrent use, any id, and a cancelled context
// honoured at once. A new store passes it or does not ship.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Run runs the contract against the stores open returns: a new, empty
// one for each subtest, which open closes (t.Cleanup) when that subtest
// ends. The subtests run in parallel, so open must be safe to call from
// several goroutines.
func Run(t *testing.T, open func(t *testing.T) ports.ResponseStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s ports.ResponseStore)
	}{
		{"PutGetRoundTrip", testRoundTrip},
		{"LargeDocuments", testLargeDocuments},
		{"BinarySafe", testBinarySafe},
		{"ReturnedAndGivenBytesAreNotShared", testNotShared},
		{"Replace", testReplace},
		{"DeleteThenGet", testDeleteThenGet},
		{"GetAbsent", testGetAbsent},
		{"DeleteAbsent", testDeleteAbsent},
		{"Expiry", testExpiry},
		{"ZeroExpiresAtNeverExpires", testNeverExpires},
		{"AlreadyExpiredPut", testAlreadyExpired},
		{"ReplaceChangesExpiry", testReplaceChangesExpiry},
		{"UnusualIDs", testUnusualIDs},
		{"EmptyIDRefused", testEmptyID},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// Response builds a stored response with small documents that name id.
func Response(id string) domain.StoredResponse {
	return domain.StoredResponse{
		ID:        id,
		CreatedAt: time.Unix(1_760_000_000, 123_456_789),
		Response:  []byte(`{"id":` + quote(id) + `,"object":"response","status":"completed"}`),
		Input:     []byte(`[{"role":"user","content":"hello from ` + strings.ReplaceAll(quote(id), `"`, `'`) + `"}]`),
	}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// Equal reports how got differs from want ("" when it does not): the same
// id, the same instants (zero staying zero), the same bytes.
func Equal(got, want domain.StoredResponse) string {
	var diffs []string
	if got.ID != want.ID {
		diffs = append(diffs, fmt.Sprintf("ID %q, want %q", got.ID, want.ID))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.IsZero() != want.CreatedAt.IsZero() {
		diffs = append(diffs, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) || got.ExpiresAt.IsZero() != want.ExpiresAt.IsZero() {
		diffs = append(diffs, fmt.Sprintf("ExpiresAt %v, want %v", got.ExpiresAt, want.ExpiresAt))
	}
	if d := bytesDiff(got.Response, want.Response); d != "" {
		diffs = append(diffs, "Response "+d)
	}
	if d := bytesDiff(got.Input, want.Input); d != "" {
		diffs = append(diffs, "Input "+d)
	}
	return strings.Join(diffs, "; ")
}

func bytesDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("differs at byte %d (%d bytes, want %d)", i, len(got), len(want))
}

func mustPut(t *testing.T, s ports.ResponseStore, r domain.StoredResponse) {
	t.Helper()
	if err := s.Put(context.Background(), r); err != nil {
		t.Fatalf("Put(%q): %v", r.ID, err)
	}
}

func mustGet(t *testing.T, s ports.ResponseStore, want domain.StoredResponse) {
	t.Helper()
	got, err := s.Get(context.Background(), want.ID)
	if err != nil {
		t.Fatalf("Get(%q): %v", want.ID, err)
	}
	if d := Equal(got, want); d != "" {
		t.Fatalf("Get(%q): %s", want.ID, d)
	}
}

func mustBeGone(t *testing.T, s ports.ResponseStore, id string) {
	t.Helper()
	if r, err := s.Get(context.Background(), id); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("Get(%q) = %d response bytes, %v; want ErrResponseNotFound", id, len(r.Response), err)
	}
}

func testRoundTrip(t *testing.T, s ports.ResponseStore) {
	r := Response("resp_roundtrip")
	r.ExpiresAt = time.Now().Add(time.Hour).Truncate(time.Millisecond)
	mustPut(t, s, r)
	mustGet(t, s, r)

	plain := Response("resp_plain") // zero ExpiresAt, kept zero
	plain.Input = nil
	mustPut(t, s, plain)
	mustGet(t, s, plain)

	noTimes := domain.StoredResponse{ID: "resp_notimes", Response: []byte("{}")}
	mustPut(t, s, noTimes)
	mustGet(t, s, noTimes)
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func testLargeDocuments(t *testing.T, s ports.ResponseStore) {
	r := Response("resp_large")
	r.Response = randomBytes(1, 3<<20+17) // a few MB, odd length
	r.Input = randomBytes(2, 2<<20+3)
	mustPut(t, s, r)
	mustGet(t, s, r)
}

func testBinarySafe(t *testing.T, s ports.ResponseStore) {
	all := make([]byte, 0, 512)
	for i := range 256 {
		all = append(all, byte(i))
	}
	all = append(all, "\r\n$-1\r\n*3\r\n\x00\xff\xfe"...) // Redis protocol look-alikes
	r := domain.StoredResponse{ID: "resp_binary", CreatedAt: time.Unix(0, 1), Response: all, Input: bytes.Repeat([]byte{0}, 1000)}
	mustPut(t, s, r)
	mustGet(t, s, r)
}

func testNotShared(t *testing.T, s ports.ResponseStore) {
	r := Response("resp_shared")
	given := Response("resp_shared") // what the store keeps must not follow later writes to these
	mustPut(t, s, given)
	for i := range given.Response {
		given.Response[i] = 'X'
	}
	got, err := s.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.Response {
		got.Response[i] = 'Y'
	}
	for i := range got.Input {
		got.Input[i] = 'Y'
	}
	mustGet(t, s, r)
}

func testReplace(t *testing.T, s ports.ResponseStore) {
	first := Response("resp_replace")
	first.Response = bytes.Repeat([]byte("first "), 1000)
	mustPut(t, s, first)
	second := Response("resp_replace")
	second.CreatedAt = first.CreatedAt.Add(time.Second)
	second.Response = []byte(`{"status":"second"}`)
	second.Input = []byte(`[]`)
	mustPut(t, s, second)
	mustGet(t, s, second)
}

func testDeleteThenGet(t *testing.T, s ports.ResponseStore) {
	r := Response("resp_delete")
	other := Response("resp_delete_other")
	mustPut(t, s, r)
	mustPut(t, s, other)
	if err := s.Delete(context.Background(), r.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustBeGone(t, s, r.ID)
	if err := s.Delete(context.Background(), r.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("second Delete = %v, want ErrResponseNotFound", err)
	}
	mustGet(t, s, other)
	mustPut(t, s, r) // and it can be stored again
	mustGet(t, s, r)
}

func testGetAbsent(t *testing.T, s ports.ResponseStore) {
	mustBeGone(t, s, "resp_never_stored")
	mustPut(t, s, Response("resp_prefix"))
	mustBeGone(t, s, "resp_pre")        // neither a prefix
	mustBeGone(t, s, "resp_prefix_")    // nor an extension
	mustBeGone(t, s, "resp_prefix\x00") // nor a NUL away
}

func testDeleteAbsent(t *testing.T, s ports.ResponseStore) {
	if err := s.Delete(context.Background(), "resp_never_stored"); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("Delete of an absent id = %v, want ErrResponseNotFound", err)
	}
}

// waitPast sleeps until t has passed by margin.
func waitPast(t time.Time, margin time.Duration) {
	time.Sleep(time.Until(t.Add(margin)))
}

func testExpiry(t *testing.T, s ports.ResponseStore) {
	r := Response("resp_expiring")
	r.ExpiresAt = time.Now().Add(400 * time.Millisecond)
	mustPut(t, s, r)
	// There before its time. (On a machine so loaded that the Put and Get
	// took 400ms, the Get proves nothing and is not judged.)
	got, err := s.Get(context.Background(), r.ID)
	if time.Now().Before(r.ExpiresAt) {
		if err != nil {
			t.Fatalf("Get before ExpiresAt: %v", err)
		}
		if d := Equal(got, r); d != "" {
			t.Fatalf("Get before ExpiresAt: %s", d)
		}
	} else {
		t.Logf("Put and Get took past ExpiresAt; the Get before expiry was not judged")
	}
	waitPast(r.ExpiresAt, 50*time.Millisecond)
	mustBeGone(t, s, r.ID)
	if err := s.Delete(context.Background(), r.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("Delete of an expired response = %v, want ErrResponseNotFound", err)
	}
}

func testNeverExpires(t *testing.T, s ports.ResponseStore) {
	forever := Response("resp_forever")
	soon := Response("resp_soon")
	soon.ExpiresAt = time.Now().Add(300 * time.Millisecond)
	mustPut(t, s, forever)
	mustPut(t, s, soon)
	waitPast(soon.ExpiresAt, 100*time.Millisecond)
	mustBeGone(t, s, soon.ID)
	mustGet(t, s, forever)
}

func testAlreadyExpired(t *testing.T, s ports.ResponseStore) {
	old := Response("resp_old")
	mustPut(t, s, old)
	old.ExpiresAt = time.Now().Add(-time.Minute) // replaced by one already expired: gone
	mustPut(t, s, old)
	mustBeGone(t, s, old.ID)

	ancient := Response("resp_ancient")
	ancient.ExpiresAt = time.Unix(-1000, 0) // before 1970
	mustPut(t, s, ancient)
	mustBeGone(t, s, ancient.ID)
}

func testReplaceChangesExpiry(t *testing.T, s ports.ResponseStore) {
	// An expiring response replaced by one that never expires stays, and
	// the other way round.
	a := Response("resp_a")
	a.ExpiresAt = time.Now().Add(300 * time.Millisecond)
	mustPut(t, s, a)
	a.ExpiresAt = time.Time{}
	mustPut(t, s, a)

	b := Response("resp_b")
	mustPut(t, s, b)
	b.ExpiresAt = time.Now().Add(300 * time.Millisecond)
	mustPut(t, s, b)

	waitPast(b.ExpiresAt, 100*time.Millisecond)
	mustGet(t, s, a)
	mustBeGone(t, s, b.ID)
}

// UnusualIDs are ids a store must keep apart and intact: separators, glob
// and protocol characters, spaces, NUL, invalid UTF-8, non-ASCII, long.
var UnusualIDs = []string{
	"resp_68af2c3d9e1c8190b5a1f0e4c3d2b1a0",
	"a", "A", "a b", " ", "\t\r\n", "a/b", "../../etc/passwd", `a\b`, "a:b", "a*", "*", "?", "[a-z]", "{tag}",
	"a\x00b", "\x00", "\xff\xfe", "\u00e9", "e\u0301", "日本語", "🙂", "%s%d", "\"quoted\"", "$-1\r\n",
	strings.Repeat("x", 1000),
}

func testUnusualIDs(t *testing.T, s ports.ResponseStore) {
	for i, id := range UnusualIDs {
		r := Response(id)
		r.Response = append(r.Response, byte(i))
		mustPut(t, s, r)
	}
	for i, id := range UnusualIDs {
		r := Response(id)
		r.Response = append(r.Response, byte(i))
		mustGet(t, s, r)
	}
	for _, id := range UnusualIDs[1:] {
		if err := s.Delete(context.Background(), id); err != nil {
			t.Fatalf("Delete(%q): %v", id, err)
		}
		mustBeGone(t, s, id)
	}
	mustGet(t, s, func() domain.StoredResponse {
		r := Response(UnusualIDs[0])
		r.Response = append(r.Response, 0)
		return r
	}())
}

func testEmptyID(t *testing.T, s ports.ResponseStore) {
	if err := s.Put(context.Background(), Response("")); err == nil {
		t.Fatal("Put with an empty id succeeded, want an error")
	}
	mustBeGone(t, s, "")
	if err := s.Delete(context.Background(), ""); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("Delete(\"\") = %v, want ErrResponseNotFound", err)
	}
}

// testConcurrent has many goroutines put, get and delete a few shared ids
// (and some of their own): every error is ErrResponseNotFound, and every
// response read is one that was written whole, never a mix of two.
func testConcurrent(t *testing.T, s ports.ResponseStore) {
	const workers, ops, shared = 16, 60, 5
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range ops {
				id := fmt.Sprintf("resp_shared_%d", rng.IntN(shared))
				if rng.IntN(4) == 0 {
					id = fmt.Sprintf("resp_own_%d_%d", w, i%3)
				}
				var err error
				switch op := rng.IntN(10); {
				case op < 4:
					r := Response(id)
					// Input repeats Response's writer mark, so a torn
					// read shows.
					mark := fmt.Sprintf("w%d-i%d-", w, i)
					r.Response = []byte(mark + strings.Repeat("r", rng.IntN(5000)))
					r.Input = []byte(mark + "input")
					if rng.IntN(3) == 0 {
						r.ExpiresAt = time.Now().Add(time.Hour)
					}
					err = s.Put(ctx, r)
				case op < 8:
					var r domain.StoredResponse
					r, err = s.Get(ctx, id)
					if err == nil {
						mark, _, _ := strings.Cut(string(r.Input), "-input")
						if r.ID != id || !strings.HasPrefix(string(r.Response), mark+"-") {
							err = fmt.Errorf("Get(%q) returned id %q, response %.20q…, input %q: a torn read", id, r.ID, r.Response, r.Input)
						}
					}
				default:
					err = s.Delete(ctx, id)
				}
				if err != nil && !errors.Is(err, domain.ErrResponseNotFound) {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	// Still usable, and consistent, afterwards.
	for i := range shared {
		id := fmt.Sprintf("resp_shared_%d", i)
		mustPut(t, s, Response(id))
		mustGet(t, s, Response(id))
	}
}

func testCancelledContext(t *testing.T, s ports.ResponseStore) {
	kept := Response("resp_kept")
	mustPut(t, s, kept)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error, took time.Duration) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", op, err)
		}
		if took > time.Second {
			t.Errorf("%s with a cancelled context took %v", op, took)
		}
	}
	start := time.Now()
	err := s.Put(ctx, Response("resp_cancelled"))
	check("Put", err, time.Since(start))
	start = time.Now()
	_, err = s.Get(ctx, kept.ID)
	check("Get", err, time.Since(start))
	start = time.Now()
	err = s.Delete(ctx, kept.ID)
	check("Delete", err, time.Since(start))

	// A deadline that passes while the call waits ends it too.
	dctx, dcancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer dcancel()
	time.Sleep(time.Millisecond)
	if _, err := s.Get(dctx, kept.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get past its deadline = %v, want context.DeadlineExceeded", err)
	}
	mustGet(t, s, kept) // a cancelled Delete removed nothing
}
