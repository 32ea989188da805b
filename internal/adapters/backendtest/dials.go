package backendtest

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
)

// Dials is a backend transport that counts the connections it opens: a
// backend client must hand each connection back to the pool once an
// answer has ended, so calls one after the other share one connection.
type Dials struct {
	n atomic.Int64
}

// Options returns opts with a transport of the backends' own kind whose
// dials d counts.
func (d *Dials) Options(opts upstream.Options) upstream.Options {
	t := upstream.NewTransport(0)
	dial := t.DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.n.Add(1)
		return dial(ctx, network, addr)
	}
	opts.Transport = t
	return opts
}

// Count is how many connections were opened so far.
func (d *Dials) Count() int64 { return d.n.Load() }
