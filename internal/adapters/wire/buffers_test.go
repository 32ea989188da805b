package wire_test

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
)

func TestBuffers(t *testing.T) {
	p := wire.Buffers{Max: 300}
	if b := p.Get(100); len(b) != 0 || cap(b) < 100 {
		t.Fatalf("new buffer: len %d cap %d", len(b), cap(b))
	}
	small, big := make([]byte, 5, 50), make([]byte, 200)
	p.Put(small)
	p.Put(big)
	p.Put(make([]byte, 100)) // would pass Max: dropped
	if b := p.Get(100); cap(b) != 200 || len(b) != 0 {
		t.Fatalf("got cap %d len %d, want the kept 200 emptied", cap(b), len(b))
	}
	if b := p.Get(100); cap(b) < 100 || cap(b) == 50 {
		t.Fatalf("got cap %d, want a new buffer: the kept one is too small", cap(b))
	}
	if b := p.Get(10); cap(b) != 50 {
		t.Fatalf("got cap %d, want the kept 50", cap(b))
	}
	var none wire.Buffers
	none.Put(make([]byte, 10))
	if b := none.Get(1); cap(b) == 10 {
		t.Fatal("the zero Buffers kept a buffer")
	}
}

func TestBuffersReadAll(t *testing.T) {
	p := wire.Buffers{Max: 1 << 20}
	body := strings.Repeat("x", 3000)
	for _, size := range []int64{-1, 0, 10, 3000, 5000} {
		got, err := p.ReadAll(strings.NewReader(body), size, 4000)
		if err != nil || string(got) != body {
			t.Errorf("size %d: %d bytes, %v", size, len(got), err)
		}
		p.Put(got)
	}
	var fresh wire.Buffers
	if got, _ := fresh.ReadAll(strings.NewReader(body), 3000, 4000); cap(got) != 3001 {
		t.Errorf("announced size: cap %d, want 3001 (no growing)", cap(got))
	}
	got, err := p.ReadAll(strings.NewReader(body), 3000, 100)
	if err != nil || len(got) != 101 {
		t.Errorf("over the limit: %d bytes (%v), want the limit and one more", len(got), err)
	}
	if _, err := p.ReadAll(iotest.ErrReader(io.ErrUnexpectedEOF), -1, 100); err != io.ErrUnexpectedEOF {
		t.Errorf("error %v, want the reader's", err)
	}
}
