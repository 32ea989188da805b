package domain

import "context"

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id that every log line and
// upstream call of this request is tagged with.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id stored by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

type flushKey struct{}

// WithFlush returns ctx carrying flush, which sends what a stream's
// consumer has written so far. A consumer that sets it may hold chunks back
// until it runs; backends call Flush before every wait for more upstream
// input, so whatever arrived together goes out together and nothing waits
// on the network while held back.
func WithFlush(ctx context.Context, flush func()) context.Context {
	return context.WithValue(ctx, flushKey{}, flush)
}

// Flush runs the flush carried by ctx, if any.
func Flush(ctx context.Context) {
	if f, ok := ctx.Value(flushKey{}).(func()); ok {
		f()
	}
}

// Flushes reports whether ctx carries a flush; a consumer without one must
// send each chunk as it gets it.
func Flushes(ctx context.Context) bool {
	_, ok := ctx.Value(flushKey{}).(func())
	return ok
}
