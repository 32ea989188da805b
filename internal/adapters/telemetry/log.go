// Package telemetry builds the zap logger and the observers that log (and,
// later, count) what the domain does.
package telemetry

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// NewLogger builds a structured logger: level is debug, info, warn or error;
// format is json or console.
func NewLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	cfg := zap.NewProductionConfig()
	if format == "console" {
		cfg = zap.NewDevelopmentConfig()
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	cfg.DisableStacktrace = true
	return cfg.Build()
}

// ForRequest returns log tagged with the request id carried by ctx.
func ForRequest(ctx context.Context, log *zap.Logger) *zap.Logger {
	if id := domain.RequestID(ctx); id != "" {
		return log.With(zap.String("request_id", id))
	}
	return log
}

// Attempts logs and counts every backend attempt; it implements
// completion.Observer. Metrics may be nil.
type Attempts struct {
	Log     *zap.Logger
	Metrics *Metrics
}

// Attempted logs one attempt and its outcome.
func (a Attempts) Attempted(ctx context.Context, route domain.Route, elapsed time.Duration, err error, next string) {
	if a.Metrics != nil {
		a.Metrics.Attempt(ctx, route, elapsed, err, next)
	}
	fallback := next != ""
	log := ForRequest(ctx, a.Log)
	fields := []zap.Field{
		zap.String("backend", route.Backend),
		zap.String("upstream_model", route.Model),
		zap.Duration("elapsed", elapsed),
	}
	switch {
	case err == nil:
		log.Debug("upstream attempt served", fields...) // the access line says who served it
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		log.Info("upstream attempt cancelled: the client went away", fields...)
	case fallback:
		log.Warn("upstream attempt failed, falling back to the next backend", append(fields, zap.String("next", next), zap.Error(err))...)
	default:
		log.Warn("upstream attempt failed", append(fields, zap.Error(err))...)
	}
}
