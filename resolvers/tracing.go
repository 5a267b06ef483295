package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/homegoods/storefront/graph/model"
)

// operationTracing gives each GraphQL operation a span, the parent of its dataloader
// batches and of the queries, Redis commands and search calls made for it. The span is
// named for the operation's type only: names come from clients, and span names must stay
// few; the name is an attribute. A subscription's span lasts as long as the subscription.
type operationTracing struct{ tracer trace.Tracer }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = operationTracing{}

func (operationTracing) ExtensionName() string                   { return "Tracing" }
func (operationTracing) Validate(graphql.ExecutableSchema) error { return nil }

func (t operationTracing) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	op := graphql.GetOperationContext(ctx).Operation
	ctx, span := t.tracer.Start(ctx, "graphql "+string(op.Operation), trace.WithAttributes(
		attribute.String("graphql.operation.type", string(op.Operation)),
		attribute.String("graphql.operation.name", op.Name)))
	responses := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if resp == nil {
			span.End()
			return nil
		}
		for _, e := range resp.Errors {
			if code, _ := e.Extensions["code"].(string); code == string(model.CodeInternal) {
				span.SetStatus(codes.Error, "internal error")
			}
		}
		if op.Operation != ast.Subscription {
			span.End()
		}
		return resp
	}
}
