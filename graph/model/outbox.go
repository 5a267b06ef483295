package model

import (
	"encoding/json"
	"time"
)

// OutboxEvent is one committed change, as recorded in the outbox in the change's transaction.
type OutboxEvent struct {
	ID          int64
	Aggregate   string // "product", "category", "brand"...
	AggregateID string
	Kind        string // "product.updated"...
	Version     int64
	Payload     json.RawMessage
	CreatedAt   time.Time
}
