package resolvers

import (
	"context"
	"net/http"

	"github.com/homegoods/storefront/graph/model"
)

// SessionHeader names the session of a request.
const SessionHeader = "X-Session-Id"

// Sessions keeps visitors' sessions where every server instance finds them.
type Sessions interface {
	// Create starts a session; customerID is "" for a guest.
	Create(ctx context.Context, customerID string) (model.Session, error)
	// Get returns the live session named by token, extending its life; ok is false for an
	// unknown or expired one.
	Get(ctx context.Context, token string) (s model.Session, ok bool, err error)
	Delete(ctx context.Context, token string) error
}

type sessionKey struct{}

// sessionMiddleware puts the session named by the request's X-Session-Id header, if it is
// alive, in the request context. Requests without the header cost nothing here.
func sessionMiddleware(sessions Sessions, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.Header.Get(SessionHeader)
		if token == "" {
			next.ServeHTTP(w, r)
			return
		}
		s, ok, err := sessions.Get(r.Context(), token)
		if err != nil || !ok {
			// An unknown, expired or unreadable session is no session: the client starts a new one.
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, &s)))
	})
}

func sessionFrom(ctx context.Context) *model.Session {
	s, _ := ctx.Value(sessionKey{}).(*model.Session)
	return s
}
