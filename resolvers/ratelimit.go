package resolvers

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/99designs/gqlgen/graphql"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/breaker"
	"github.com/homegoods/storefront/graph/model"
)

// ComplexityRateLimit is a gqlgen extension that charges each operation its cost to its
// client's budget, so that one expensive query costs as much as the many cheap ones it is
// worth. Add it after the extension that prices operations, whose figure cost returns:
// gqlgen runs extensions in the order of Use.
//
// Over-budget operations are refused with extensions.code RATE_LIMITED and
// extensions.retryAfter in whole seconds. Until then, this instance refuses the client's
// operations before they are even parsed, so that a client that keeps sending costs next to
// nothing. When the limiter fails (Redis is down) the operation runs: the limit protects
// the service, and an outage of Redis must not become an outage of the API. After a
// failure, operations run unlimited for a second before the limiter is tried again, so that
// they do not all wait for Redis to time out.
type ComplexityRateLimit struct {
	limiter RateLimiter
	key     func(ctx context.Context) string
	cost    func(ctx context.Context) int
	// upfront, when set, prices a request before its document is parsed (ChargeBeforeParsing).
	upfront func(*graphql.RawParams) int
	// refused remembers the clients refused lately, until they may retry.
	refused *lru.Cache[string, time.Time]
	// failures and misplaced log apart, so that one problem does not hide the other.
	failures, misplaced *breaker.Log
	// breaker skips the limiter for a second after it failed.
	breaker *breaker.Breaker
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationContextMutator
} = (*ComplexityRateLimit)(nil)

// refusedClients bounds the clients an instance remembers as refused: beyond it, the
// least recently refused are forgotten, and Redis refuses them again.
const refusedClients = 10_000

// NewComplexityRateLimit returns the extension. key names the client of a request (such as
// the token subject, or the IP address of guests); an empty key is not limited. cost is
// the price of the operation in ctx, 0 when it was not priced.
func NewComplexityRateLimit(limiter RateLimiter, key func(ctx context.Context) string, cost func(ctx context.Context) int, log *slog.Logger) *ComplexityRateLimit {
	refused, _ := lru.New[string, time.Time](refusedClients) // fails for sizes below 1 only
	return &ComplexityRateLimit{limiter: limiter, key: key, cost: cost, refused: refused,
		failures: breaker.NewLog(log), misplaced: breaker.NewLog(log), breaker: breaker.New(breaker.Options{})}
}

// ExtensionName names the extension in gqlgen's stats.
func (*ComplexityRateLimit) ExtensionName() string { return "ComplexityRateLimit" }

// Validate checks the extension's configuration when it is added to a server.
func (e *ComplexityRateLimit) Validate(graphql.ExecutableSchema) error {
	if e.limiter == nil || e.key == nil || e.cost == nil {
		return errors.New("ComplexityRateLimit needs a limiter, a key and a cost function")
	}
	return nil
}

// ChargeBeforeParsing makes the extension also charge price(params), when positive, before
// the document is parsed: what reading a long document and its variables costs, which an
// operation that fails to parse, validate or pass the cost limit would otherwise never pay.
// It returns e.
func (e *ComplexityRateLimit) ChargeBeforeParsing(price func(*graphql.RawParams) int) *ComplexityRateLimit {
	e.upfront = price
	return e
}

// MutateOperationParameters refuses, before parsing, the operations of a client that was
// refused lately and may not retry yet, and charges the price before parsing, if any.
func (e *ComplexityRateLimit) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	key := e.key(ctx)
	if key == "" {
		return nil
	}
	if until, ok := e.refused.Get(key); ok {
		if wait := time.Until(until); wait > 0 {
			return rateLimited(wait)
		}
		e.refused.Remove(key)
	}
	if e.upfront == nil {
		return nil
	}
	if cost := e.upfront(params); cost > 0 {
		return e.charge(ctx, key, cost)
	}
	return nil
}

// MutateOperationContext charges the operation's complexity and refuses it when the budget
// cannot pay.
func (e *ComplexityRateLimit) MutateOperationContext(ctx context.Context, _ *graphql.OperationContext) *gqlerror.Error {
	key := e.key(ctx)
	if key == "" {
		return nil
	}
	return e.charge(ctx, key, e.price(ctx))
}

// charge charges cost to the client key, and refuses the operation when the budget cannot
// pay.
func (e *ComplexityRateLimit) charge(ctx context.Context, key string, cost int) *gqlerror.Error {
	var allowed bool
	var retryAfter time.Duration
	err := e.breaker.Do(ctx, func(ctx context.Context) (err error) {
		allowed, retryAfter, err = e.limiter.Allow(ctx, key, cost)
		return err
	})
	switch {
	case errors.Is(err, breaker.ErrOpen):
		return nil // the limiter failed a moment ago: let operations through
	case err != nil && ctx.Err() != nil:
		return nil // the client is gone: not a failure of the limiter
	case err != nil:
		e.failures.Warn(ctx, "rate limiter failed; letting operations through", err)
		return nil
	case !allowed:
		e.refused.Add(key, time.Now().Add(retryAfter))
		return rateLimited(retryAfter)
	}
	return nil
}

// price is the operation's cost, at least 1. An operation that was not priced (the
// extension runs before the one that prices, or without it) costs 1, and the
// misconfiguration is logged.
func (e *ComplexityRateLimit) price(ctx context.Context) int {
	cost := e.cost(ctx)
	if cost <= 0 {
		e.misplaced.Warn(ctx, "operation not priced: add ComplexityRateLimit after the extension that prices operations", nil)
		return 1
	}
	return cost
}

// rateLimited is the error of an operation refused for wait.
func rateLimited(wait time.Duration) *gqlerror.Error {
	seconds := ratelimitSeconds(wait)
	gqlErr := gqlerror.Errorf("too many requests: retry in %d seconds", seconds)
	gqlErr.Extensions = map[string]any{"code": string(model.CodeRateLimited), "retryAfter": seconds}
	return gqlErr
}

// ratelimitSeconds is d in whole seconds rounded up, at least 1: what a client should wait.
func ratelimitSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
