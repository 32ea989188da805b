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
