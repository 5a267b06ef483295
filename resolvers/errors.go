package resolvers

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/graph/model"
)

// errorPresenter turns resolver errors into client errors: a *model.Error keeps its message
// and code, gqlgen's own parse and validation errors keep theirs, and anything else becomes an
// INTERNAL error whose text is logged once, with the field path, and never sent.
func errorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
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
		case gqlErr.Extensions["code"] != nil:
			// gqlgen's GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED and the like.
		case errors.Is(err, context.Canceled):
			gqlErr.Message = "request canceled"
			gqlErr.Extensions = map[string]any{"code": string(model.CodeInternal)}
		default:
			log.ErrorContext(ctx, "resolver failed", "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message = "internal error"
			gqlErr.Extensions = map[string]any{"code": string(model.CodeInternal)}
		}
		return gqlErr
	}
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
