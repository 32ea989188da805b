package redisstore_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/redisstore/redistest"
)

// TestMain stops the redis-server the tests started (redistest),
// then fails the package if any test left a goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	redistest.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
