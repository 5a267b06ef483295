package model

import (
	"net/mail"
	"strings"
	"time"
)

// TypeCustomer and TypeCustomerAddress name customers and their addresses in global ids.
const (
	TypeCustomer        = "Customer"
	TypeCustomerAddress = "CustomerAddress"
)

// Customer is a shopper's account: signed in with a password, or through an identity
// provider (Issuer and Subject set).
type Customer struct {
	ID string
	// Email is lower-cased; nil for an identity provider's customer without a verified one.
	Email           *string
	Name            string
	PasswordHash    string // "" without a password; never leaves the server
	EmailVerifiedAt *time.Time
	Issuer, Subject string
	Version         int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// GlobalID is the customer's id in the API.
func (c *Customer) GlobalID() string { return GlobalID(TypeCustomer, c.ID) }

// HasPassword reports whether the customer signs in with a password.
func (c *Customer) HasPassword() bool { return c.PasswordHash != "" }

// CustomerAddress is an address of a customer's address book.
type CustomerAddress struct {
	ID              string
	CustomerID      string
	Address         *Address
	DefaultShipping bool
	CreatedAt       time.Time
}

// GlobalID is the address's id in the API.
func (a *CustomerAddress) GlobalID() string { return GlobalID(TypeCustomerAddress, a.ID) }

// MaxAddresses bounds a customer's address book.
const MaxAddresses = 50

// TokenPurpose is what a mailed token is for.
type TokenPurpose string

// The purposes of mailed tokens (customer_token_purpose).
const (
	VerifyEmail   TokenPurpose = "VERIFY_EMAIL"
	ResetPassword TokenPurpose = "RESET_PASSWORD"
)

// CustomerMailEvent is the kind of the outbox events that ask for a mail to a customer.
const CustomerMailEvent = "customer.mail"

// CustomerMail is the payload of the outbox event that asks for a mail to a customer: the
// mail consumer renders and sends it. Token is the single-use secret the mail carries (only
// its hash is kept elsewhere).
type CustomerMail struct {
	Purpose TokenPurpose `json:"purpose"`
	Email   string       `json:"email"`
	Name    string       `json:"name"`
	Token   string       `json:"token"`
	Expires time.Time    `json:"expires"`
}

// NormalizeEmail trims and lower-cases an email address and checks it: at most MaxEmailLen
// characters, a bare address (no display name). ok is false for anything else.
func NormalizeEmail(s string) (email string, ok bool) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > MaxEmailLen || !strings.Contains(s, "@") {
		return "", false
	}
	return strings.ToLower(s), true
}

// CustomerAccessToken is what signing in gives a customer.
type CustomerAccessToken struct {
	AccessToken string
	ExpiresAt   time.Time
	Customer    *Customer
	Cart        *Cart
}
