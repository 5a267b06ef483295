package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

const addressColumns = `a.id::text, a.customer_id::text, a.address, a.default_shipping, a.created_at`

func scanAddress(row pgx.CollectableRow) (*model.CustomerAddress, error) {
	var a model.CustomerAddress
	err := row.Scan(&a.ID, &a.CustomerID, &a.Address, &a.DefaultShipping, &a.CreatedAt)
	return &a, err
}

// Addresses returns the address books of customers, each oldest first.
func (s *Store) Addresses(ctx context.Context, customerIDs []string) (map[string][]*model.CustomerAddress, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+addressColumns+` FROM customer_addresses a
		WHERE a.customer_id = ANY($1::uuid[]) ORDER BY a.customer_id, a.created_at, a.id`, uuidArray(customerIDs))
	if err != nil {
		return nil, translate(err, "addresses")
	}
	all, err := pgx.CollectRows(rows, scanAddress)
	if err != nil {
		return nil, translate(err, "addresses")
	}
	out := make(map[string][]*model.CustomerAddress, len(customerIDs))
	for _, a := range all {
		out[a.CustomerID] = append(out[a.CustomerID], a)
	}
	return out, nil
}

// CreateAddress adds an address to the customer's book, at most model.MaxAddresses; a new
// default shipping address takes over from the old one.
func (s *Store) CreateAddress(ctx context.Context, customerID string, addr model.Address, defaultShipping bool) (*model.CustomerAddress, error) {
	var out *model.CustomerAddress
	err := s.changeAddresses(ctx, customerID, defaultShipping, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM customer_addresses WHERE customer_id = $1`, customerID).Scan(&n); err != nil {
			return err
		}
		if n >= model.MaxAddresses {
			return model.Errorf(model.CodeConflict, "an address book holds %d addresses at most: delete one first", model.MaxAddresses)
		}
		raw, _ := json.Marshal(addr)
		var err error
		out, err = queryAddress(ctx, tx, `INSERT INTO customer_addresses AS a (customer_id, address, default_shipping)
			VALUES ($1, $2, $3) RETURNING `+addressColumns, customerID, raw, defaultShipping)
		return err
	})
	return out, translate(err, "create address")
}

// UpdateAddress changes the customer's address id: its fields when addr is not nil, whether
// it is the default shipping address when defaultShipping is not nil. Another customer's
// address is NOT_FOUND.
func (s *Store) UpdateAddress(ctx context.Context, customerID, id string, addr *model.Address, defaultShipping *bool) (*model.CustomerAddress, error) {
	var raw []byte
	if addr != nil {
		raw, _ = json.Marshal(addr)
	}
	var out *model.CustomerAddress
	err := s.changeAddresses(ctx, customerID, defaultShipping != nil && *defaultShipping, func(tx pgx.Tx) error {
		var err error
		out, err = queryAddress(ctx, tx, `UPDATE customer_addresses AS a
			SET address = coalesce($3, address), default_shipping = coalesce($4, default_shipping)
			WHERE a.id = $1 AND a.customer_id = $2 RETURNING `+addressColumns, id, customerID, raw, defaultShipping)
		return err
	})
	return out, translate(err, "update address")
}

// DeleteAddress deletes the customer's address id; another customer's is NOT_FOUND.
func (s *Store) DeleteAddress(ctx context.Context, customerID, id string) error {
	return translate(s.changeAddresses(ctx, customerID, false, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM customer_addresses WHERE id = $1 AND customer_id = $2`, id, customerID)
		if err == nil && tag.RowsAffected() == 0 {
			return model.NotFound("address")
		}
		return err
	}), "delete address")
}

// changeAddresses runs change on the customer's address book under the customer's row lock,
// so that the book's bound holds against concurrent additions. clearDefault first takes
// the default mark off every address, for the one change is about to mark.
func (s *Store) changeAddresses(ctx context.Context, customerID string, clearDefault bool, change func(pgx.Tx) error) error {
	if !model.IsUUID(customerID) {
		return model.NotFound("customer")
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `SELECT 1 FROM customers WHERE id = $1 FOR UPDATE`, customerID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return model.NotFound("customer")
		}
		if clearDefault {
			if _, err := tx.Exec(ctx, `UPDATE customer_addresses SET default_shipping = false
				WHERE customer_id = $1 AND default_shipping`, customerID); err != nil {
				return err
			}
		}
		return change(tx)
	})
}

func queryAddress(ctx context.Context, tx pgx.Tx, sql string, args ...any) (*model.CustomerAddress, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	a, err := pgx.CollectExactlyOneRow(rows, scanAddress)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, model.NotFound("address")
	}
	return a, err
}
