package wire

import (
	"io"
	"sync"
)

// Buffers keeps large byte buffers (embeddings answers, hundreds of KiB
// each) for reuse, up to Max bytes of capacity in all. Unlike a sync.Pool,
// a collection does not empty it: such a buffer allocated again costs its
// clearing, and its page faults once the runtime returned the memory, on
// every request. The zero value keeps nothing; set Max.
type Buffers struct {
	Max   int // the most capacity kept, in bytes
	mu    sync.Mutex
	free  [][]byte
	bytes int // capacity of free
}

// Get returns an empty buffer of at least size bytes of capacity: a kept
// one when there is one large enough, else a new one.
func (p *Buffers) Get(size int) []byte {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; cap(b) >= size {
			last := len(p.free) - 1
			p.free[i], p.free[last] = p.free[last], nil
			p.free = p.free[:last]
			p.bytes -= cap(b)
			p.mu.Unlock()
			return b[:0]
		}
	}
	p.mu.Unlock()
	return make([]byte, 0, size)
}

// Put gives b back for another Get, unless keeping it would pass Max. The
// caller must not use b afterwards.
func (p *Buffers) Put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cap(b) == 0 || p.bytes+cap(b) > p.Max {
		return
	}
	p.free = append(p.free, b[:0])
	p.bytes += cap(b)
}

// ReadAll reads r to its end, but at most limit bytes and one more (the
// caller refuses a longer body), into a buffer from p made for size bytes
// when size is known (≥ 0; a Content-Length). Give the buffer back with
// Put once done with it.
func (p *Buffers) ReadAll(r io.Reader, size int64, limit int) ([]byte, error) {
	want := 512
	if size >= 0 && size <= int64(limit) {
		want = int(size) + 1 // room to see the end without growing
	}
	b := p.Get(want)
	r = io.LimitReader(r, int64(limit)+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
