// Package telemetry builds the zap logger and the observers that log (and,
// later, count) what the domain does.
package telemetry

import (
	"context"
	"errors"
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// NewLogger builds a structured logger writing to w: level is debug, info,
// warn or error; format is json or console. Lines are buffered (flushed
// every second, when the buffer fills, and by the returned stop), so a
// request does not pay a write system call per line; stop must run before
// the process exits.
func NewLogger(level, format string, w io.Writer) (log *zap.Logger, stop func() error, err error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	encoder := zapcore.NewJSONEncoder(enc)
	if format == "console" {
		dev := zap.NewDevelopmentEncoderConfig()
		dev.EncodeTime = zapcore.ISO8601TimeEncoder
		encoder = zapcore.NewConsoleEncoder(dev)
	}
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), Size: 256 << 10, FlushInterval: time.Second}
	core := zapcore.NewCore(encoder, ws, zap.NewAtomicLevelAt(lvl))
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), ws.Stop, nil
}

// Attempts logs and counts every backend attempt; it implements
// dispatch.Observer. Metrics may be nil.
type Attempts struct {
	Log     *zap.Logger
	Metrics *Metrics
	// Settings name, per backend, the configuration keys to check when
	// it refuses the service's credentials or its URL; may be nil.
	Settings map[string]BackendSettings
}

// BackendSettings name where a backend's credentials and URL are set, as a
// user would look for them: "GATEWAY_API_KEY (gateway.api_key)".
type BackendSettings struct {
	APIKey string
	URL    string
}

// Attempted logs one attempt and its outcome.
func (a Attempts) Attempted(ctx context.Context, route domain.Route, elapsed time.Duration, err error, next string) {
	if a.Metrics != nil {
		a.Metrics.Attempt(ctx, route, elapsed, err, next)
	}
	level, msg := zapcore.DebugLevel, "upstream attempt served" // the access line says who served it
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		level, msg = zapcore.InfoLevel, "upstream attempt cancelled: the client went away"
	case next == route.Backend:
		level, msg = zapcore.WarnLevel, "upstream attempt failed, trying the next host of the backend"
	case next != "":
		level, msg = zapcore.WarnLevel, "upstream attempt failed, falling back to the next backend"
	default:
		level, msg = zapcore.WarnLevel, "upstream attempt failed"
	}
	ce := a.Log.Check(level, msg)
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.String("request_id", domain.RequestID(ctx)),
		zap.String("backend", route.Backend),
		zap.String("upstream_model", route.Model),
		zap.Duration("elapsed", elapsed),
	}
	if route.Host != "" {
		fields = append(fields, zap.String("host", route.Host))
	}
	if route.Affinity != "" {
		fields = append(fields, zap.String("affinity", route.Affinity))
	}
	if next != "" {
		fields = append(fields, zap.String("next", next))
	}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	var ue *domain.UpstreamError
	if errors.As(err, &ue) && ue.Misconfigured() {
		fields = append(fields, zap.String("check", a.check(route.Backend, ue.Kind)))
	}
	ce.Write(fields...)
}

// check says which setting to look at when a backend refuses the service.
func (a Attempts) check(backend string, kind domain.FailureKind) string {
	s, ok := a.Settings[backend]
	if kind == domain.FailureUnauthorized {
		if ok && s.APIKey != "" {
			return "the backend refused this service's credentials: check " + s.APIKey
		}
		return "the backend refused this service's credentials: check its api_key setting"
	}
	if ok && s.URL != "" {
		return "the backend does not know the path it was called on: check " + s.URL + " (an OpenAI-compatible base URL usually ends in /v1)"
	}
	return "the backend does not know the path it was called on: check its url setting"
}
