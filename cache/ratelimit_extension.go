package cache

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/graph/model"
)

// ComplexityRateLimit is a gqlgen extension that charges each operation its complexity to
// its client's budget, so that one expensive query costs as much as the many cheap ones it
// is worth. Add it after extension.ComplexityLimit, whose figure it charges: gqlgen runs
// extensions in the order of Use.
//
// Over-budget operations are refused with extensions.code RATE_LIMITED and
// extensions.retryAfter in whole seconds. When the limiter fails (Redis is down) the
// operation runs: the limit protects the service, and an outage of Redis must not become
// an outage of the API. After a failure, operations run unlimited for a second before the
// limiter is tried again, so that they do not all wait for Redis to time out.
type ComplexityRateLimit struct {
	limiter RateLimiter
	key     func(ctx context.Context) string
	// failures and misplaced log apart, so that one problem does not hide the other.
	failures, misplaced *ratelimitLog
	pause               ratelimitPause
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = (*ComplexityRateLimit)(nil)

// NewComplexityRateLimit returns the extension. key names the client of a request (such as
// the token subject, or the IP address of guests); an empty key is not limited.
func NewComplexityRateLimit(limiter RateLimiter, key func(ctx context.Context) string, log *slog.Logger) *ComplexityRateLimit {
	return &ComplexityRateLimit{limiter: limiter, key: key, failures: newRatelimitLog(log), misplaced: newRatelimitLog(log)}
}

// ExtensionName names the extension in gqlgen's stats.
func (*ComplexityRateLimit) ExtensionName() string { return "ComplexityRateLimit" }

// Validate checks the extension's configuration when it is added to a server.
func (e *ComplexityRateLimit) Validate(graphql.ExecutableSchema) error {
	if e.limiter == nil || e.key == nil {
		return errors.New("ComplexityRateLimit needs a limiter and a key function")
	}
	return nil
}

// MutateOperationContext charges the operation's complexity and refuses it when the budget
// cannot pay.
func (e *ComplexityRateLimit) MutateOperationContext(ctx context.Context, _ *graphql.OperationContext) *gqlerror.Error {
	key := e.key(ctx)
	if key == "" || e.pause.active() {
		return nil
	}
	allowed, retryAfter, err := e.limiter.Allow(ctx, key, e.cost(ctx))
	switch {
	case err != nil && ctx.Err() != nil:
		return nil // the client is gone: not a failure of the limiter
	case err != nil:
		e.pause.start()
		e.failures.warn(ctx, "rate limiter failed; letting operations through", err)
		return nil
	case !allowed:
		seconds := ratelimitSeconds(retryAfter)
		gqlErr := gqlerror.Errorf("too many requests: retry in %d seconds", seconds)
		gqlErr.Extensions = map[string]any{"code": string(model.CodeRateLimited), "retryAfter": seconds}
		return gqlErr
	}
	return nil
}

// cost is the operation's complexity, at least 1. Without complexity stats (the extension
// runs before extension.ComplexityLimit, or without it) every operation costs 1, and the
// misconfiguration is logged.
func (e *ComplexityRateLimit) cost(ctx context.Context) int {
	stats := extension.GetComplexityStats(ctx)
	if stats == nil {
		e.misplaced.warn(ctx, "no complexity stats: add ComplexityRateLimit after extension.ComplexityLimit", nil)
		return 1
	}
	return max(stats.Complexity, 1)
}
