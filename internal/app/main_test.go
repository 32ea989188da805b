package app_test

import (
	"fmt"
	"os"
	"testing"
)

// testTmp holds what the applications of this package's tests write (their
// embedded response stores); it is removed when the tests end.
var testTmp string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chatgpt-api-app-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testTmp = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
