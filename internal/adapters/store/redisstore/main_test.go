package redisstore_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain stops the redis-server the tests started (see server_test.go),
// then fails the package if any test left a goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	stopServer()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
