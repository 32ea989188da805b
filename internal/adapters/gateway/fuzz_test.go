package gateway

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// FuzzSSE feeds arbitrary bytes as an upstream event stream. Whatever
// arrives, the reader must not panic, must end with either success (only
// after a [DONE]) or an error, and must only hand out well-formed chunks.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}\n\n"))
	f.Add([]byte(": ping\n\nevent: x\ndata: {\"error\":{\"message\":\"boom\"}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := sseReader{backend: "fuzz", frame: func() {}, fail: func(err error) error { return err }}
		err := r.relay(bytes.NewReader(body), func(c domain.Chunk) error {
			if c.Index < 0 {
				t.Fatalf("negative choice index %d", c.Index)
			}
			for _, tc := range c.ToolCalls {
				if tc.Index < 0 {
					t.Fatalf("negative tool call index %d", tc.Index)
				}
			}
			return nil
		})
		if err == nil && !bytes.Contains(body, doneMarker) {
			t.Fatal("a stream without [DONE] was taken as complete")
		}
		var ue *domain.UpstreamError
		if err != nil && !errors.As(err, &ue) && err != io.ErrUnexpectedEOF && err != errFrameTooLong {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}
