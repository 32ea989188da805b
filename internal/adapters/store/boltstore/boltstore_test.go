package boltstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/boltstore"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/storetest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// TestMain fails the package if any test leaves a goroutine behind (a
// sweeper that Close did not stop, say).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openTemp(t *testing.T, opts boltstore.Options) (*boltstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", boltstore.FileName)
	s, err := boltstore.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ports.ResponseStore {
		s, _ := openTemp(t, boltstore.Options{SweepInterval: 100 * time.Millisecond})
		return s
	})
}

// The contract with every change still queued when it is read (a commit
// an hour away), and with every Put and Delete waiting for its commit.
func TestContractQueued(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ports.ResponseStore {
		s, _ := openTemp(t, boltstore.Options{CommitDelay: time.Hour, MaxBytes: 64 << 20})
		t.Cleanup(func() { checkStats(t, s) })
		return s
	})
}

func TestContractCommitEachPut(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ports.ResponseStore {
		s, _ := openTemp(t, boltstore.Options{CommitDelay: -1})
		return s
	})
}

// The contract once more with a size cap large enough never to evict, so
// that the accounting runs under every operation.
func TestContractWithSizeCap(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ports.ResponseStore {
		s, _ := openTemp(t, boltstore.Options{MaxBytes: 64 << 20})
		t.Cleanup(func() { checkStats(t, s) })
		return s
	})
}

// checkStats compares the running count and total with the records.
func checkStats(t *testing.T, s *boltstore.Store) {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Responses < 0 || st.Bytes < 0 || (st.Responses == 0) != (st.Bytes == 0) {
		t.Errorf("Stats = %+v: inconsistent", st)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "c", boltstore.FileName)
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("store file: %v, %v", fi, err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
}

func TestSurvivesCloseAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), boltstore.FileName)
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kept := storetest.Response("resp_kept")
	kept.ExpiresAt = time.Now().Add(time.Hour).Round(0)
	kept.Response = bytes.Repeat([]byte{0, 1, 2, 0xff}, 300_000)
	forever := storetest.Response("resp_forever")
	deleted := storetest.Response("resp_deleted")
	for _, r := range []domain.StoredResponse{kept, forever, deleted} {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(ctx, kept.ID); err == nil {
		t.Fatal("Get on a closed store succeeded")
	}

	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range []domain.StoredResponse{kept, forever} {
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatalf("after reopen, Get(%q): %v", want.ID, err)
		}
		if d := storetest.Equal(got, want); d != "" {
			t.Fatalf("after reopen, Get(%q): %s", want.ID, d)
		}
	}
	if _, err := s.Get(ctx, deleted.ID); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("after reopen, the deleted response: %v", err)
	}
	if after, _ := s.Stats(); after != before || after.Responses != 2 {
		t.Fatalf("Stats after reopen = %+v, before close %+v, want 2 responses", after, before)
	}
}

func TestSweeperRemovesExpired(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, boltstore.Options{SweepInterval: 50 * time.Millisecond})
	exp := time.Now().Add(200 * time.Millisecond)
	for i := range 50 {
		r := storetest.Response(fmt.Sprintf("resp_%02d", i))
		if i%5 != 0 {
			r.ExpiresAt = exp.Add(time.Duration(i) * time.Millisecond)
		}
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Responses == 10 {
			want := int64(10 * storetest.Response("resp_00").Size())
			if st.Bytes != want {
				t.Fatalf("after the sweep, Stats = %+v, want %d bytes", st, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper left %d responses, want the 10 that never expire", st.Responses)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 50; i += 5 {
		if _, err := s.Get(ctx, fmt.Sprintf("resp_%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSweepOnDemand(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, boltstore.Options{SweepInterval: -1}) // no background sweeper
	soon, later := storetest.Response("resp_soon"), storetest.Response("resp_later")
	soon.ExpiresAt = time.Now().Add(300 * time.Millisecond)
	later.ExpiresAt = time.Now().Add(time.Hour)
	for _, r := range []domain.StoredResponse{soon, later} {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Sweep(ctx)
	if err != nil || n > 1 || n == 1 && time.Now().Before(soon.ExpiresAt) {
		t.Fatalf("Sweep before expiry = %d, %v; want 0", n, err)
	}
	time.Sleep(time.Until(soon.ExpiresAt.Add(50 * time.Millisecond)))
	if n == 0 { // as it is unless the machine took 300ms over the Puts
		if st, _ := s.Stats(); st.Responses != 2 {
			t.Fatalf("Stats = %+v: something swept without a sweeper", st)
		}
		if _, err := s.Get(ctx, soon.ID); !errors.Is(err, domain.ErrResponseNotFound) {
			t.Fatalf("Get of an expired, unswept response = %v", err)
		}
		if n, err := s.Sweep(ctx); n != 1 || err != nil {
			t.Fatalf("Sweep = %d, %v; want 1", n, err)
		}
	}
	if st, _ := s.Stats(); st != (boltstore.Stats{Responses: 1, Bytes: int64(later.Size())}) {
		t.Fatalf("Stats after sweep = %+v, want only %q", st, later.ID)
	}
	if _, err := s.Get(ctx, later.ID); err != nil {
		t.Fatal(err)
	}
}

// TestSizeCapEvicts: records that expire go first, earliest expiry first;
// then, the oldest CreatedAt first; a record bigger than the cap on its own
// is refused and changes nothing.
func TestSizeCapEvicts(t *testing.T) {
	ctx := context.Background()
	const doc = 1000
	rec := func(id string, created int64, expiresIn time.Duration) domain.StoredResponse {
		r := domain.StoredResponse{
			ID:        id, // 4 bytes each: every record is doc+4 bytes
			CreatedAt: time.Unix(1_760_000_000+created, 0),
			Response:  bytes.Repeat([]byte{'r'}, doc-100),
			Input:     bytes.Repeat([]byte{'i'}, 100),
		}
		if expiresIn != 0 {
			r.ExpiresAt = time.Now().Add(expiresIn)
		}
		return r
	}
	s, _ := openTemp(t, boltstore.Options{MaxBytes: 5 * (doc + 4)}) // room for five
	put := func(r domain.StoredResponse) {
		t.Helper()
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	present := func(want ...string) {
		t.Helper()
		// Eviction happens as the queued Puts are committed.
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range []string{"old1", "old2", "old3", "exp1", "exp2", "exp3", "new1", "new2", "new3", "new4"} {
			if _, err := s.Get(ctx, id); err == nil {
				got = append(got, id)
			} else if !errors.Is(err, domain.ErrResponseNotFound) {
				t.Fatal(err)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("present: %v, want %v", got, want)
		}
		st, _ := s.Stats()
		if st.Responses != len(want) || st.Bytes != int64(len(want)*(doc+4)) {
			t.Fatalf("Stats = %+v, want %d responses of %d bytes", st, len(want), doc+4)
		}
	}
	put(rec("old2", 2, 0))
	put(rec("old1", 1, 0))
	put(rec("exp2", 10, 2*time.Hour))
	put(rec("exp1", 11, time.Hour)) // expires first, though created later
	put(rec("old3", 3, 0))
	present("old1", "old2", "old3", "exp1", "exp2")

	put(rec("new1", 20, 0)) // evicts exp1, the first to expire
	present("old1", "old2", "old3", "exp2", "new1")
	put(rec("new2", 21, 0)) // then exp2
	present("old1", "old2", "old3", "new1", "new2")
	put(rec("new3", 22, 3*time.Hour)) // none expires now: the oldest, old1
	present("old2", "old3", "new1", "new2", "new3")

	// Replacing a record frees its own bytes first: nothing evicted.
	put(rec("new2", 21, 0))
	present("old2", "old3", "new1", "new2", "new3")

	// A record twice the size evicts two: new3 first (the only one that
	// expires), then old2 (the oldest).
	big := rec("new4", 30, 0)
	big.Response = bytes.Repeat([]byte{'b'}, 2*doc+4-100)
	put(big)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "new3"); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("new3 (the only expiring record) should have gone first: %v", err)
	}
	if _, err := s.Get(ctx, "old2"); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Fatalf("old2 (the oldest) should have gone next: %v", err)
	}
	st, _ := s.Stats()
	if want := int64(3*(doc+4) + big.Size()); st.Responses != 4 || st.Bytes != want {
		t.Fatalf("Stats = %+v, want 4 responses, %d bytes", st, want)
	}

	// Too big on its own: refused, nothing evicted.
	huge := rec("huge", 40, 0)
	huge.Response = bytes.Repeat([]byte{'h'}, 5*(doc+4))
	err := s.Put(ctx, huge)
	if !errors.Is(err, boltstore.ErrTooLarge) {
		t.Fatalf("Put of a record bigger than the cap = %v, want ErrTooLarge", err)
	}
	for _, want := range []string{"huge", "5020", "MaxBytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if st2, _ := s.Stats(); st2 != st {
		t.Fatalf("a refused Put changed the store: %+v, was %+v", st2, st)
	}
}

// Expired records are evicted before live ones, whatever their expiry
// order was at write time.
func TestSizeCapEvictsExpiredFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, boltstore.Options{MaxBytes: 3000, SweepInterval: -1})
	mk := func(id string, exp time.Time) domain.StoredResponse {
		return domain.StoredResponse{ID: id, ExpiresAt: exp, Response: bytes.Repeat([]byte{'x'}, 996)} // 1000 bytes with the id
	}
	for _, r := range []domain.StoredResponse{
		mk("live", time.Time{}),
		mk("dead", time.Now().Add(30*time.Millisecond)),
		mk("late", time.Now().Add(time.Hour)),
	} {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Put(ctx, mk("next", time.Time{})); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]error{"live": nil, "late": nil, "next": nil, "dead": domain.ErrResponseNotFound} {
		if _, err := s.Get(ctx, id); !errors.Is(err, want) {
			t.Errorf("Get(%q) = %v, want %v", id, err, want)
		}
	}
	if st, _ := s.Stats(); st.Responses != 3 {
		t.Errorf("Stats = %+v, want 3 responses", st)
	}
}

func TestNegativeMaxBytesRefused(t *testing.T) {
	if _, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"), boltstore.Options{MaxBytes: -1}); err == nil {
		t.Fatal("Open with MaxBytes -1 succeeded")
	}
}

func checkLockedError(t *testing.T, err error, path string, took, limit time.Duration) {
	t.Helper()
	if err == nil {
		t.Fatal("second Open of the same file succeeded")
	}
	t.Logf("second Open, after %v: %v", took.Round(time.Millisecond), err)
	if took > limit {
		t.Errorf("second Open failed after %v, want within %v", took, limit)
	}
	for _, want := range []string{path, "locked by another process", "Redis"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Two opens of one file in one process: bbolt's flock is per open file,
// so this is what a second process meets too.
func TestSecondOpenFails(t *testing.T) {
	_, path := openTemp(t, boltstore.Options{})
	start := time.Now()
	s2, err := boltstore.Open(path, boltstore.Options{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		s2.Close()
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		t.Errorf("err = %v, want ErrLocked", err)
	}
	checkLockedError(t, err, path, time.Since(start), 2*time.Second)
}

// And a real second process: this test binary again, running only
// TestHelperOpen, which opens the file with the default lock timeout.
func TestSecondProcessCannotOpen(t *testing.T) {
	_, path := openTemp(t, boltstore.Options{})
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOpen$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BOLTSTORE_HELPER_PATH="+path)
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err == nil {
		t.Fatalf("the second process opened the file:\n%s", out)
	}
	msg := string(out)
	i := strings.Index(msg, "OPEN ERROR: ")
	if i < 0 {
		t.Fatalf("the helper process failed otherwise (%v):\n%s", err, out)
	}
	msg, _, _ = strings.Cut(msg[i+len("OPEN ERROR: "):], "\n")
	checkLockedError(t, errors.New(msg), path, took, boltstore.DefaultLockTimeout+10*time.Second)
}

func TestHelperOpen(t *testing.T) {
	path := os.Getenv("BOLTSTORE_HELPER_PATH")
	if path == "" {
		t.Skip("runs only as TestSecondProcessCannotOpen's second process")
	}
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println("OPEN ERROR: " + err.Error())
		os.Exit(3)
	}
	s.Close()
}
