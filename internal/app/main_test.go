package app_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/redisstore/redistest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// testTmp holds what the applications of this package's tests write (their
// embedded response stores); it is removed when the tests end.
var testTmp string

// serveEnv makes the test binary run the service itself (app.Main with
// the environment as its configuration), so a test can start real service
// processes: see TestReplicasShareResponsesThroughRedis.
const serveEnv = "CHATGPT_API_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		os.Exit(app.Main(nil, os.Stdout, os.Stderr))
	}
	dir, err := os.MkdirTemp("", "chatgpt-api-app-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testTmp = dir
	code := m.Run()
	redistest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}
