package resolvers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/graph/model"
)

// errorPresenter turns resolver errors into client errors: a *model.Error keeps its message
// and code, gqlgen's own parse and validation errors keep theirs (without "Did you mean"
// suggestions unless suggest is set: they would describe the schema), an uncoded error of
// the request itself (such as an APQ hash that does not match its query) is the client's
// mistake, BAD_USER_INPUT, and anything else becomes an INTERNAL error whose text is logged
// once, with the field path, and never sent.
func errorPresenter(log *slog.Logger, suggest bool) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var me *model.Error
		switch {
		case errors.As(err, &me):
			gqlErr.Message = me.Message
			gqlErr.Extensions = map[string]any{"code": string(me.Code)}
			if me.Argument != "" {
				gqlErr.Extensions["argumentPath"] = strings.Split(me.Argument, ".")
			}
			if me.RetryAfter > 0 {
				gqlErr.Extensions["retryAfter"] = int(math.Ceil(me.RetryAfter.Seconds()))
			}
		case unavailable(err):
			log.WarnContext(ctx, "no answer in time", "path", gqlErr.Path.String(), "err", capped(err.Error()))
			gqlErr.Message = "the server could not answer in time: retry shortly"
			gqlErr.Extensions = map[string]any{"code": string(model.CodeUnavailable), "retryAfter": 1}
		case gqlErr.Extensions["code"] != nil:
			// gqlgen's GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED and the like.
			if !suggest {
				gqlErr.Message = suggestion.ReplaceAllString(gqlErr.Message, "")
			}
		case errors.Is(err, context.Canceled):
			gqlErr.Message = "request canceled"
			gqlErr.Extensions = map[string]any{"code": string(model.CodeInternal)}
		case isRequestError(ctx, err):
			log.DebugContext(ctx, "request refused", "err", capped(err.Error()))
			gqlErr.Extensions = map[string]any{"code": string(model.CodeBadUserInput)}
		default:
			log.ErrorContext(ctx, "resolver failed", "path", gqlErr.Path.String(), "err", capped(err.Error()))
			gqlErr.Message = "internal error"
			gqlErr.Extensions = map[string]any{"code": string(model.CodeInternal)}
		}
		return gqlErr
	}
}

// unavailable reports whether err means the server could not answer in time: the request's
// deadline passed, a service it needs could not be reached (Redis down, say: a network
// error), or PostgreSQL gave up waiting (statement or lock timeout, no connection slot).
// Such a request may well succeed when retried.
func unavailable(err error) bool {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) {
		return true
	}
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		switch pg.SQLState() {
		case "57014", "55P03", "53300": // query_canceled, lock_not_available, too_many_connections
			return true
		}
	}
	return false
}

// suggestion is the hint gqlparser appends to some validation errors.
var suggestion = regexp.MustCompile(` Did you mean [^?]*\?$`)

// isRequestError reports whether err is one of gqlgen's errors about the request itself:
// raised outside any field and wrapping no other error.
func isRequestError(ctx context.Context, err error) bool {
	var gqlErr *gqlerror.Error
	return graphql.GetFieldContext(ctx) == nil && errors.As(err, &gqlErr) && gqlErr.Err == nil && len(gqlErr.Path) == 0
}

// maxLoggedError caps the text of an error in the log: a client's input may be in it.
const maxLoggedError = 512

func capped(s string) string {
	if len(s) <= maxLoggedError {
		return s
	}
	return s[:maxLoggedError] + fmt.Sprintf("... (%d bytes)", len(s))
}

// recoverFunc answers a panicking resolver with INTERNAL and logs the panic with its stack.
func recoverFunc(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		path := ""
		if fc := graphql.GetFieldContext(ctx); fc != nil {
			path = fc.Path().String()
		}
		log.ErrorContext(ctx, "resolver panicked", "path", path, "panic", p, "stack", string(debug.Stack()))
		return &model.Error{Code: model.CodeInternal, Message: "internal error"}
	}
}
