package resolvers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// The close codes of graphql-transport-ws (the graphql-ws library's PROTOCOL.md), also used
// for the legacy graphql-ws protocol, which names none of its own.
const (
	closeInvalidMessage    = 4400
	closeUnauthorized      = 4401
	closeInitTimeout       = 4408
	closeSubscriberExists  = 4409
	closeTooManyInitialise = 4429
)

// websocketInitTimeout is how long a socket may stay open without connection_init.
const websocketInitTimeout = 3 * time.Second

// protocolWebsocket wraps gqlgen's websocket implementation so that the subscription
// protocols are kept to the letter where gqlgen's transport is loose: it closes with 1002 or
// 1000 where graphql-transport-ws says 4400, 4401, 4408, 4409 or 4429, lets a second
// subscription take an id in use, and waits forever for connection_init. The wrapper reads
// each client message before gqlgen does and closes the socket with the protocol's code on
// a violation; gqlgen never sees that message. It also drops the "complete" gqlgen sends
// after an "error" or after the client's own "complete", which the protocol forbids.
type protocolWebsocket struct {
	inner       transport.WebsocketImplementation
	initTimeout time.Duration
}

func (p protocolWebsocket) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := p.inner.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	c := &protocolConn{WebsocketConn: conn, dialect: legacyWS, active: map[string]bool{}}
	if conn.Subprotocol() == "graphql-transport-ws" {
		c.dialect = transportWS
	}
	if slot, ok := r.Context().Value(socketSlotKey{}).(*socketSlot); ok {
		slot.conn = c // for the InitFunc, which watches the socket's token
	}
	c.initTimer = time.AfterFunc(p.initTimeout, func() {
		c.violate(closeInitTimeout, "Connection initialisation timeout")
	})
	return c, nil
}

// wsDialect names the message types of one subscription protocol.
type wsDialect struct {
	legacy    bool
	subscribe string          // the client's message that starts an operation
	stop      string          // the client's message that ends one
	client    map[string]bool // every message type a client may send
}

var (
	transportWS = wsDialect{subscribe: "subscribe", stop: "complete",
		client: map[string]bool{"connection_init": true, "subscribe": true, "complete": true, "ping": true, "pong": true}}
	legacyWS = wsDialect{legacy: true, subscribe: "start", stop: "stop",
		client: map[string]bool{"connection_init": true, "start": true, "stop": true, "connection_terminate": true}}
)

// wsMessage is the envelope of both protocols.
type wsMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type protocolConn struct {
	transport.WebsocketConn
	dialect   wsDialect
	initTimer *time.Timer

	mu     sync.Mutex
	inits  int
	acked  bool
	closed bool
	active map[string]bool // operation ids in use
	// tokenHolds, once the socket is authenticated with a token, says whether the token
	// still holds: a subscription started after it expired or was revoked closes the
	// socket with 4401.
	tokenHolds func() bool
}

// requireToken makes every later subscription check holds first.
func (c *protocolConn) requireToken(holds func() bool) {
	c.mu.Lock()
	c.tokenHolds = holds
	c.mu.Unlock()
}

// NextReader reads the next client message, checks it against the protocol and hands it to
// gqlgen, or closes the socket with the code of the violation.
func (c *protocolConn) NextReader() (int, io.Reader, error) {
	typ, r, err := c.WebsocketConn.NextReader()
	if err != nil {
		return typ, r, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return typ, nil, err
	}
	if code, reason := c.check(data); code != 0 {
		c.violate(code, reason)
		return typ, nil, transport.ErrWebsocketClosed
	}
	return typ, bytes.NewReader(data), nil
}

// check returns the close code and reason of a message that breaks the protocol, or 0.
func (c *protocolConn) check(data []byte) (int, string) {
	var m wsMessage
	if err := json.Unmarshal(data, &m); err != nil || !c.dialect.client[m.Type] {
		return closeInvalidMessage, "Invalid message received"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m.Type {
	case "connection_init":
		if p := bytes.TrimSpace(m.Payload); len(p) > 0 && !isJSONObject(p) && string(p) != "null" {
			return closeInvalidMessage, "Invalid message received"
		}
		if c.inits++; c.inits > 1 {
			return closeTooManyInitialise, "Too many initialisation requests"
		}
		c.initTimer.Stop()
	case c.dialect.subscribe:
		switch {
		case m.ID == "" || !isJSONObject(bytes.TrimSpace(m.Payload)):
			return closeInvalidMessage, "Invalid message received"
		case !c.acked || c.tokenHolds != nil && !c.tokenHolds():
			return closeUnauthorized, "Unauthorized"
		case c.active[m.ID]:
			return closeSubscriberExists, "Subscriber for " + m.ID + " already exists"
		}
		c.active[m.ID] = true
	case c.dialect.stop:
		if m.ID == "" {
			return closeInvalidMessage, "Invalid message received"
		}
		delete(c.active, m.ID)
	}
	return 0, ""
}

// WriteJSON sends a server message, keeping track of the acknowledgement and of the
// operations that end.
func (c *protocolConn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var m wsMessage
	_ = json.Unmarshal(data, &m)
	c.mu.Lock()
	switch m.Type {
	case "connection_ack":
		c.acked = true
	case "error":
		delete(c.active, m.ID)
	case "complete":
		if !c.dialect.legacy && !c.active[m.ID] {
			c.mu.Unlock()
			return nil // the operation already ended: no second word on it
		}
		delete(c.active, m.ID)
	}
	c.mu.Unlock()
	return c.WebsocketConn.WriteJSON(json.RawMessage(data))
}

// violate closes the socket with code, after a connection_error in the legacy protocol,
// which has no codes of its own that clients read.
func (c *protocolConn) violate(code int, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	if c.dialect.legacy {
		payload, _ := json.Marshal(map[string]string{"message": reason})
		_ = c.WebsocketConn.WriteJSON(wsMessage{Type: "connection_error", Payload: payload})
	}
	_ = c.WebsocketConn.WriteClose(code, reason)
	_ = c.WebsocketConn.Close()
}

// WriteClose closes the socket unless a violation already did.
func (c *protocolConn) WriteClose(code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.initTimer.Stop()
	return c.WebsocketConn.WriteClose(code, reason)
}

// SetReadLimit and SetReadDeadline pass gqlgen's limits on to the socket.
func (c *protocolConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (c *protocolConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

func isJSONObject(raw []byte) bool { return len(raw) > 0 && raw[0] == '{' }
