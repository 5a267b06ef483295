package resolvers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/graph/model"
)

// A subscription lives as long as the token it was opened with: when the token expires or
// is revoked, or the session of a customer's access token ends, a websocket closes with 4401
// (Unauthorized, the graphql-transport-ws close code) and a stream of server-sent events
// sends an UNAUTHENTICATED error as its last event, then completes. The client must sign in
// again and resubscribe.

// errTokenEnded is the cause of a stream's end when its token ended.
var errTokenEnded = errors.New("the token expired or was revoked")

// watch calls end once p's token stops holding (it expires, or is revoked), or its session
// ended, unless ctx ends first.
func (a *Auth) watch(ctx context.Context, p Principal, end func()) {
	expiry := time.NewTimer(time.Until(p.Expires.Add(tokenLeeway)))
	defer expiry.Stop()
	var recheck <-chan time.Time
	if p.SessionID != "" {
		t := time.NewTicker(min(a.customerIdle/4, maxSessionRecheck))
		defer t.Stop()
		recheck = t.C
	}
	for {
		changed := a.revoked.Changed() // before looking, so that no revocation slips between
		if !a.holds(p) {
			end()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-expiry.C:
		case <-changed:
		case <-recheck:
			if a.sessionEnded(ctx, p) {
				end()
				return
			}
		}
	}
}

// endWithToken returns a context cancelled, with errTokenEnded as its cause, when p's token
// stops holding: a server-sent event stream's.
func (a *Auth) endWithToken(ctx context.Context, p Principal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go a.watch(ctx, p, func() { cancel(errTokenEnded) })
	return ctx, func() { cancel(nil) }
}

// tokenEnded is a response middleware: a subscription whose stream ended because its token
// did gets a last response, the UNAUTHENTICATED error, instead of ending without a word.
func tokenEnded(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil && errors.Is(context.Cause(ctx), errTokenEnded) {
		err := gqlerror.Errorf("%s: sign in again", errTokenEnded)
		err.Extensions = map[string]any{"code": string(model.CodeUnauthenticated)}
		return &graphql.Response{Errors: gqlerror.List{err}}
	}
	return resp
}

// socketSlot carries a websocket's connection from the transport's Accept to its InitFunc,
// which gqlgen calls with the upgrade request's context but not the connection.
type socketSlot struct{ conn *protocolConn }

type socketSlotKey struct{}

// withSocketSlot gives websocket upgrade requests a slot for their connection.
func withSocketSlot(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			r = r.WithContext(context.WithValue(r.Context(), socketSlotKey{}, &socketSlot{}))
		}
		next.ServeHTTP(w, r)
	})
}

// socketOf returns the websocket connection of ctx, nil when there is none.
func socketOf(ctx context.Context) *protocolConn {
	if slot, ok := ctx.Value(socketSlotKey{}).(*socketSlot); ok {
		return slot.conn
	}
	return nil
}
