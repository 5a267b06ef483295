package resolvers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/graph/model"
)

// Media types of GraphQL over HTTP.
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// httpTransport serves GraphQL over HTTP, GET and POST, as the GraphQL-over-HTTP
// specification says. It replaces gqlgen's GET and POST transports, which answer request
// errors with "data": null and 422, a mutation over GET with 406, copy the whole body into
// the error of a malformed one, and hold a subscription sent as a plain POST until its first
// event. Here:
//   - the response is application/graphql-response+json when the client accepts it first,
//     else application/json (also when Accept is missing or */*);
//   - a body or parameters that are not a GraphQL request (bad JSON, a batch array, variables
//     that are not an object, no query) are 400, an oversized body 413, a POST that is not JSON 415,
//     any other method 405: all with a typed error;
//   - request errors (parse, validation, coercion, limits) carry no data; they are 200 under
//     application/json and 400 under application/graphql-response+json (429 for
//     RATE_LIMITED, 401 and 403 for UNAUTHENTICATED and FORBIDDEN), and RATE_LIMITED always
//     sends Retry-After;
//   - a mutation over GET is 405 with Allow: POST, and a subscription without a streaming
//     transport is refused at once.
//
// It takes every request the streaming and OPTIONS transports before it leave.
type httpTransport struct{}

var _ graphql.Transport = httpTransport{}

func (httpTransport) Supports(r *http.Request) bool { return r.Header.Get("Upgrade") == "" }

func (t httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	media := responseMedia(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	reply := &replier{w: w, r: r, media: media, exec: exec}

	params, status, err := readParams(r)
	if err == nil && params.Query == "" && params.Extensions["persistedQuery"] == nil {
		status, err = http.StatusBadRequest, clientError("the request has no query (nor the hash of a persisted one)")
	}
	if err != nil {
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		reply.malformed(status, err)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: graphql.Now(), End: graphql.Now()}

	ctx := graphql.StartOperationTrace(r.Context())
	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		reply.refused(graphql.WithOperationContext(ctx, oc), errs)
		return
	}
	switch op := oc.Operation.Operation; {
	case op == ast.Mutation && r.Method == http.MethodGet:
		w.Header().Set("Allow", "POST")
		reply.malformed(http.StatusMethodNotAllowed, clientError("mutations are sent with POST, not GET"))
		return
	case op == ast.Subscription:
		reply.refused(graphql.WithOperationContext(ctx, oc), gqlerror.List{clientError("subscriptions need a stream: open a websocket (graphql-transport-ws) or send Accept: text/event-stream")})
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	reply.result(responses(ctx))
}

// readParams reads the request's GraphQL parameters: from the query string of a GET, from
// the JSON body of a POST. On failure it returns the HTTP status and the error to send.
func readParams(r *http.Request) (*graphql.RawParams, int, *gqlerror.Error) {
	switch r.Method {
	case http.MethodGet:
		return queryParams(r.URL.RawQuery)
	case http.MethodPost:
		media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if media != mediaJSON {
			return nil, http.StatusUnsupportedMediaType, clientError("send the request as application/json")
		}
		return bodyParams(r.Body)
	}
	return nil, http.StatusMethodNotAllowed, clientError("use GET or POST")
}

// requestBody is a POST's body: a GraphQL request is a JSON object, never an array.
type requestBody struct {
	Query         *string        `json:"query"`
	OperationName *string        `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`
}

func bodyParams(body io.Reader) (*graphql.RawParams, int, *gqlerror.Error) {
	raw, err := io.ReadAll(body)
	if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
		return nil, http.StatusRequestEntityTooLarge, clientError("request body too large: the limit is %d bytes", maxErr.Limit)
	}
	if err != nil {
		return nil, http.StatusBadRequest, clientError("could not read the request body")
	}
	if first := bytes.TrimLeft(raw, " \t\r\n"); len(first) > 0 && first[0] == '[' {
		return nil, http.StatusBadRequest, clientError("batched operations are not supported: send one operation per request")
	}
	var b requestBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		return nil, http.StatusBadRequest, clientError("the body is not a GraphQL request: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, http.StatusBadRequest, clientError("the body is not a GraphQL request: data after the JSON object")
	}
	p := &graphql.RawParams{Variables: b.Variables, Extensions: b.Extensions}
	if b.Query != nil {
		p.Query = *b.Query
	}
	if b.OperationName != nil {
		p.OperationName = *b.OperationName
	}
	return p, 0, nil
}

func queryParams(rawQuery string) (*graphql.RawParams, int, *gqlerror.Error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, http.StatusBadRequest, clientError("the query string is malformed")
	}
	p := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	for name, dst := range map[string]*map[string]any{"variables": &p.Variables, "extensions": &p.Extensions} {
		if v := q.Get(name); v != "" {
			dec := json.NewDecoder(strings.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(dst); err != nil {
				return nil, http.StatusBadRequest, clientError("%s must be a JSON object", name)
			}
		}
	}
	return p, 0, nil
}

// describeJSONError says what is wrong with a body without quoting it.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		want := "an object"
		if typeErr.Field == "query" || typeErr.Field == "operationName" {
			want = "a string"
		}
		return fmt.Sprintf("%s must be %s", typeErr.Field, want)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("invalid JSON at byte %d", syntaxErr.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the body is empty or cut short"
	}
	return "it must be a JSON object"
}

// clientError is a request error in the client's request itself.
func clientError(format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": string(model.CodeBadUserInput)}
	return err
}

// responseMedia picks the response's media type from the Accept header: the first of the
// two GraphQL ones the client names, application/json for */*, application/* or none.
func responseMedia(accept string) string {
	if accept == "" {
		return mediaJSON
	}
	for part := range strings.SplitSeq(accept, ",") {
		media, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		switch media {
		case mediaGraphQLResponse:
			return mediaGraphQLResponse
		case mediaJSON, "*/*", "application/*":
			return mediaJSON
		}
	}
	return mediaJSON
}

// replier writes one response in the negotiated media type.
type replier struct {
	w     http.ResponseWriter
	r     *http.Request
	media string
	exec  graphql.GraphExecutor
}

// malformed answers a request that is not a well-formed GraphQL request with status,
// whatever the media type.
func (p *replier) malformed(status int, err *gqlerror.Error) {
	ctx := graphql.WithOperationContext(p.r.Context(), &graphql.OperationContext{})
	p.errors(ctx, gqlerror.List{err}, status)
}

// refused answers a well-formed request that was not executed (parse, validation or
// coercion errors, limits): 200 under application/json, where the status cannot say more
// than the errors do; a 4xx that names the class under application/graphql-response+json.
func (p *replier) refused(ctx context.Context, errs gqlerror.List) {
	status := http.StatusOK
	if p.media == mediaGraphQLResponse {
		status = http.StatusBadRequest
		switch {
		case hasCode(errs, model.CodeRateLimited):
			status = http.StatusTooManyRequests
		case hasCode(errs, model.CodeUnauthenticated):
			status = http.StatusUnauthorized
		case hasCode(errs, model.CodeForbidden):
			status = http.StatusForbidden
		}
	}
	p.errors(ctx, errs, status)
}

// errors writes a response of errors alone: a request error has no data entry at all.
func (p *replier) errors(ctx context.Context, errs gqlerror.List, status int) {
	resp := p.exec.DispatchError(ctx, errs)
	for _, e := range resp.Errors {
		if seconds, ok := e.Extensions["retryAfter"]; ok && e.Extensions["code"] == string(model.CodeRateLimited) {
			p.w.Header().Set("Retry-After", fmt.Sprint(seconds))
		}
	}
	body, _ := json.Marshal(struct {
		Errors     gqlerror.List  `json:"errors"`
		Extensions map[string]any `json:"extensions,omitempty"`
	}{resp.Errors, resp.Extensions})
	p.w.WriteHeader(status)
	_, _ = p.w.Write(body)
}

// result writes an executed operation's response.
func (p *replier) result(resp *graphql.Response) {
	if len(resp.Errors) == 0 && len(resp.Data) > 0 && resp.Label == "" && resp.Path == nil && resp.HasNext == nil && resp.Extensions == nil {
		// Most responses are data alone, which the executor wrote as JSON already: written
		// as is, rather than through json.Marshal, which would scan the data once more to
		// compact and escape it (a twentieth of the CPU of a cached product page).
		_, _ = io.WriteString(p.w, `{"data":`)
		_, _ = p.w.Write(resp.Data)
		_, _ = io.WriteString(p.w, `}`)
		return
	}
	body, err := json.Marshal(resp)
	if err != nil {
		p.malformed(http.StatusInternalServerError, &gqlerror.Error{Message: "internal error",
			Extensions: map[string]any{"code": string(model.CodeInternal)}})
		return
	}
	_, _ = p.w.Write(body)
}

func hasCode(errs gqlerror.List, code model.ErrorCode) bool {
	for _, e := range errs {
		if e.Extensions["code"] == string(code) {
			return true
		}
	}
	return false
}
