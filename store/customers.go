package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

// How long a mailed token works: a verification link may wait in an inbox for days, a
// password reset should be used at once.
const (
	VerifyEmailTTL   = 72 * time.Hour
	ResetPasswordTTL = time.Hour
)

func tokenTTL(purpose model.TokenPurpose) time.Duration {
	if purpose == model.ResetPassword {
		return ResetPasswordTTL
	}
	return VerifyEmailTTL
}

const customerColumns = `c.id::text, c.email, c.name, coalesce(c.password_hash, ''), c.email_verified_at,
    coalesce(c.issuer, ''), coalesce(c.subject, ''), c.version, c.created_at, c.updated_at`

func scanCustomer(row pgx.CollectableRow) (*model.Customer, error) {
	var c model.Customer
	err := row.Scan(&c.ID, &c.Email, &c.Name, &c.PasswordHash, &c.EmailVerifiedAt, &c.Issuer, &c.Subject,
		&c.Version, &c.CreatedAt, &c.UpdatedAt)
	return &c, err
}

// queryCustomer runs a query of customerColumns and returns its one row, or NOT_FOUND.
func queryCustomer(ctx context.Context, q querier, sql string, args ...any) (*model.Customer, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanCustomer)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, model.NotFound("customer")
	}
	return c, err
}

// logCustomerSQL records a change of a customer in the outbox: what consumers may know of
// them, never the password hash.
const logCustomerSQL = `
INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload)
SELECT 'customer', c.id::text, $2, c.version,
       jsonb_build_object('email', c.email, 'name', c.name, 'verified', c.email_verified_at IS NOT NULL)
FROM customers c WHERE c.id = $1`

const registerSQL = `
INSERT INTO customers AS c (email, name, password_hash) VALUES ($1, $2, $3)
RETURNING ` + customerColumns

// RegisterCustomer creates a customer who signs in with a password (passwordHash), and asks
// for the verification mail in the same transaction. An email that has an account is
// CONFLICT.
func (s *Store) RegisterCustomer(ctx context.Context, email, name, passwordHash string) (*model.Customer, error) {
	var c *model.Customer
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if c, err = queryCustomer(ctx, tx, registerSQL, email, name, passwordHash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, logCustomerSQL, c.ID, "customer.created"); err != nil {
			return err
		}
		return issueToken(ctx, tx, c, model.VerifyEmail)
	})
	if err != nil {
		return nil, translate(err, "register customer")
	}
	return c, nil
}

// Customer returns the customer with id, or NOT_FOUND.
func (s *Store) Customer(ctx context.Context, id string) (*model.Customer, error) {
	if !model.IsUUID(id) {
		return nil, model.NotFound("customer")
	}
	return queryCustomer(ctx, s.pool, `SELECT `+customerColumns+` FROM customers c WHERE c.id = $1`, id)
}

// CustomerByEmail returns the customer with the (lower-cased) email, or NOT_FOUND.
func (s *Store) CustomerByEmail(ctx context.Context, email string) (*model.Customer, error) {
	return queryCustomer(ctx, s.pool, `SELECT `+customerColumns+` FROM customers c WHERE c.email = $1`, email)
}

// UpdateCustomer changes the customer's name when name is not nil.
func (s *Store) UpdateCustomer(ctx context.Context, id string, name *string) (*model.Customer, error) {
	return s.changeCustomer(ctx, id, "customer.updated",
		`UPDATE customers c SET name = coalesce($2, name), version = version + 1, updated_at = now()
		 WHERE c.id = $1 RETURNING `+customerColumns, name)
}

// SetPassword stores a new password hash of the customer.
func (s *Store) SetPassword(ctx context.Context, id, passwordHash string) error {
	_, err := s.changeCustomer(ctx, id, "customer.password_changed",
		`UPDATE customers c SET password_hash = $2, version = version + 1, updated_at = now()
		 WHERE c.id = $1 RETURNING `+customerColumns, passwordHash)
	return err
}

// changeCustomer runs an UPDATE of one customer ($1) returning customerColumns and logs
// the change as kind.
func (s *Store) changeCustomer(ctx context.Context, id, kind, sql string, args ...any) (*model.Customer, error) {
	if !model.IsUUID(id) {
		return nil, model.NotFound("customer")
	}
	var c *model.Customer
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if c, err = queryCustomer(ctx, tx, sql, append([]any{id}, args...)...); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, logCustomerSQL, id, kind)
		return err
	})
	if err != nil {
		return nil, translate(err, kind)
	}
	return c, nil
}

// IssueToken asks for a mail to the customer with a new token for purpose. A customer
// without an email gets none (NOT_FOUND).
func (s *Store) IssueToken(ctx context.Context, customerID string, purpose model.TokenPurpose) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := queryCustomer(ctx, tx, `SELECT `+customerColumns+` FROM customers c WHERE c.id = $1`, customerID)
		if err != nil {
			return err
		}
		return issueToken(ctx, tx, c, purpose)
	})
	return translate(err, "issue token")
}

const (
	insertTokenSQL = `
INSERT INTO customer_tokens (hash, customer_id, purpose, email, expires_at) VALUES ($1, $2, $3, $4, $5)`
	// The mail event carries the token itself, the one place it exists: only its hash is
	// kept in customer_tokens. It leaves the outbox when the event is pruned (FEED_RETAIN
	// after delivery).
	mailEventSQL = `
INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload) VALUES ('customer', $1, '` + model.CustomerMailEvent + `', $2, $3)`
)

// issueToken makes a token for purpose, valid for its TTL, and the outbox event of the mail
// that carries it.
func issueToken(ctx context.Context, tx pgx.Tx, c *model.Customer, purpose model.TokenPurpose) error {
	if c.Email == nil {
		return model.NotFound("email")
	}
	token := rand.Text()
	m := model.CustomerMail{Purpose: purpose, Email: *c.Email, Name: c.Name, Token: token,
		Expires: time.Now().Add(tokenTTL(purpose)).Truncate(time.Second)}
	if _, err := tx.Exec(ctx, insertTokenSQL, tokenHash(token), c.ID, purpose, m.Email, m.Expires); err != nil {
		return err
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, mailEventSQL, c.ID, c.Version, payload)
	return err
}

// useTokenSQL spends a token: once, before it expires, while the customer's email is still
// the one it was mailed to.
const useTokenSQL = `
UPDATE customer_tokens t SET used_at = now()
FROM customers c
WHERE t.hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > now()
  AND c.id = t.customer_id AND c.email = t.email
RETURNING c.id::text, c.email`

// errBadToken answers every token that cannot be used, whatever the reason.
var errBadToken = model.InvalidArgument("token", "the token is unknown, used or expired: ask for a new mail")

// useToken spends token for purpose and returns the customer's id and email.
func useToken(ctx context.Context, tx pgx.Tx, token string, purpose model.TokenPurpose) (id, email string, err error) {
	err = tx.QueryRow(ctx, useTokenSQL, tokenHash(token), purpose).Scan(&id, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", errBadToken
	}
	return id, email, err
}

// claimOrdersSQL gives a customer the guest orders placed with their email, each logged in
// the outbox.
var claimOrdersSQL = withOutbox("order", "order.claimed",
	`UPDATE orders SET customer_id = $1, version = version + 1, updated_at = now()
	 WHERE lower(email) = $2 AND customer_id IS NULL RETURNING *`, `count(*)`)

// VerifyEmail spends a verification token: the customer's email is verified, and the guest
// orders placed with it become theirs. It returns the customer and how many orders they got.
func (s *Store) VerifyEmail(ctx context.Context, token string) (c *model.Customer, claimed int, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		id, email, err := useToken(ctx, tx, token, model.VerifyEmail)
		if err != nil {
			return err
		}
		c, err = queryCustomer(ctx, tx, `UPDATE customers c SET email_verified_at = coalesce(email_verified_at, now()),
			version = version + 1, updated_at = now() WHERE c.id = $1 RETURNING `+customerColumns, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, logCustomerSQL, id, "customer.verified"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, claimOrdersSQL, id, email).Scan(&claimed)
	})
	if err != nil {
		return nil, 0, translate(err, "verify email")
	}
	return c, claimed, nil
}

// ResetPassword spends a reset token and sets the customer's password hash. Every other
// reset token of the customer is spent too. It returns the customer's id.
func (s *Store) ResetPassword(ctx context.Context, token, passwordHash string) (string, error) {
	var id string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if id, _, err = useToken(ctx, tx, token, model.ResetPassword); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE customer_tokens SET used_at = now()
			WHERE customer_id = $1 AND purpose = 'RESET_PASSWORD' AND used_at IS NULL`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE customers SET password_hash = $2, version = version + 1, updated_at = now()
			WHERE id = $1`, id, passwordHash); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, logCustomerSQL, id, "customer.password_changed")
		return err
	})
	if err != nil {
		return "", translate(err, "reset password")
	}
	return id, nil
}

// identitySQL finds the customer of an identity provider's subject, or creates them. The
// email is taken only when no other account has it: an account is never joined to another
// by email alone.
const identitySQL = `
WITH found AS (
    SELECT ` + customerColumns + ` FROM customers c WHERE c.issuer = $1 AND c.subject = $2
), created AS (
    INSERT INTO customers AS c (issuer, subject, email, name, email_verified_at)
    SELECT $1, $2, e.email, $4, CASE WHEN e.email IS NOT NULL THEN now() END
    FROM (SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM customers WHERE email = $3) THEN $3 END AS email) e
    WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT DO NOTHING
    RETURNING ` + customerColumns + `
)
SELECT * FROM found UNION ALL SELECT * FROM created`

// CustomerByIdentity returns the customer of subject at issuer, created on first sight with
// name and, when the provider vouched for it and no account has it, email (nil: none).
func (s *Store) CustomerByIdentity(ctx context.Context, issuer, subject string, email *string, name string) (*model.Customer, error) {
	for range 3 { // a racing first sign-in of the same subject, or a racing email, wins once
		c, err := queryCustomer(ctx, s.pool, identitySQL, issuer, subject, email, name)
		if model.ErrorCodeOf(err) != model.CodeNotFound {
			return c, translate(err, "customer by identity")
		}
	}
	return nil, errors.New("customer by identity: no row after three tries")
}

// OrderByNumber returns the order with number if it was placed with email (compared without
// case), and NOT_FOUND otherwise, whichever of the two is wrong.
func (s *Store) OrderByNumber(ctx context.Context, number int64, email string) (*model.Order, error) {
	orders, err := queryOrders(ctx, s.pool, `SELECT `+orderColumns+` FROM orders o WHERE o.number = $1 AND lower(o.email) = $2`, number, email)
	if err != nil {
		return nil, fmt.Errorf("order by number: %w", err)
	}
	if len(orders) == 0 {
		return nil, model.NotFound("order")
	}
	return orders[0], nil
}
