package resolvers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/password"
)

// Customers is what the resolvers need from the customers' store.
type Customers interface {
	RegisterCustomer(ctx context.Context, email, name, passwordHash string) (*model.Customer, error)
	Customer(ctx context.Context, id string) (*model.Customer, error)
	CustomerByEmail(ctx context.Context, email string) (*model.Customer, error)
	UpdateCustomer(ctx context.Context, id string, name *string) (*model.Customer, error)
	SetPassword(ctx context.Context, id, passwordHash string) error
	IssueToken(ctx context.Context, customerID string, purpose model.TokenPurpose) error
	VerifyEmail(ctx context.Context, token string) (*model.Customer, int, error)
	ResetPassword(ctx context.Context, token, passwordHash string) (string, error)
	Addresses(ctx context.Context, customerIDs []string) (map[string][]*model.CustomerAddress, error)
	CreateAddress(ctx context.Context, customerID string, addr model.Address, defaultShipping bool) (*model.CustomerAddress, error)
	UpdateAddress(ctx context.Context, customerID, id string, addr *model.Address, defaultShipping *bool) (*model.CustomerAddress, error)
	DeleteAddress(ctx context.Context, customerID, id string) error
	OrderByNumber(ctx context.Context, number int64, email string) (*model.Order, error)
}

// RateLimiter charges a key for an attempt and refuses it once the key's budget is spent
// (cache.RateLimiter).
type RateLimiter interface {
	Allow(ctx context.Context, key string, cost int) (allowed bool, retryAfter time.Duration, err error)
}

// AccountLimits are the rate limits of what can be used to guess: sign-in attempts per
// account (the email tried) and per client, and guest order lookups and mail requests per
// client. A nil limiter limits nothing.
type AccountLimits struct {
	PerAccount, PerClient RateLimiter
}

// accounts holds what the account resolvers use besides the store.
type accounts struct {
	store     Customers
	passwords *password.Hasher
	limits    AccountLimits
}

// errSignIn answers every failed sign-in alike: unknown email, wrong password, or an account
// of an identity provider.
var errSignIn = model.Errorf(model.CodeUnauthenticated, "wrong email or password")

// checkEmail normalizes an email argument or refuses it.
func checkEmail(arg, email string) (string, error) {
	norm, ok := model.NormalizeEmail(email)
	if !ok {
		return "", model.InvalidArgument(arg, "not an email address of at most %d characters", model.MaxEmailLen)
	}
	return norm, nil
}

// checkNewPassword refuses a weak password.
func checkNewPassword(arg, pw string) error {
	if why := password.Weakness(pw); why != "" {
		return model.InvalidArgument(arg, "%s", why)
	}
	return nil
}

// checkName trims and bounds a customer's name.
func checkName(arg, name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 200 {
		return "", model.InvalidArgument(arg, "a name has 1 to 200 characters")
	}
	return name, nil
}

// limit charges one attempt to key, refusing it with RATE_LIMITED when the budget is spent.
// A limiter that fails lets the attempt through: the limits slow guessing, they must not
// lock everybody out while Redis is away.
func limit(ctx context.Context, l RateLimiter, key string) error {
	if l == nil {
		return nil
	}
	ok, retry, err := l.Allow(ctx, key, 1)
	if err != nil || ok {
		return nil
	}
	return &model.Error{Code: model.CodeRateLimited, RetryAfter: retry,
		Message: fmt.Sprintf("too many attempts: retry in %d s", int(math.Ceil(retry.Seconds())))}
}

// register creates an account and returns the customer. The password is hashed before the
// email is looked at, so that a taken email answers (CONFLICT) as slowly as a free one.
func (a *accounts) register(ctx context.Context, in model.CustomerRegisterInput) (*model.Customer, error) {
	email, err := checkEmail("input.email", in.Email)
	if err != nil {
		return nil, err
	}
	name, err := checkName("input.name", in.Name)
	if err != nil {
		return nil, err
	}
	if err := checkNewPassword("input.password", in.Password); err != nil {
		return nil, err
	}
	if err := limit(ctx, a.limits.PerClient, "signin:"+ClientKey(ctx)); err != nil {
		return nil, err
	}
	hash, err := a.passwords.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	return a.store.RegisterCustomer(ctx, email, name, hash)
}

// signIn checks an email and password and returns the customer. An unknown email costs a
// hash like a known one.
func (a *accounts) signIn(ctx context.Context, email, pw string) (*model.Customer, error) {
	email, err := checkEmail("email", email)
	if err != nil {
		return nil, err
	}
	if len(pw) > password.MaxLength {
		return nil, errSignIn
	}
	if err := limit(ctx, a.limits.PerClient, "signin:"+ClientKey(ctx)); err != nil {
		return nil, err
	}
	if err := limit(ctx, a.limits.PerAccount, "signin-account:"+email); err != nil {
		return nil, err
	}
	c, err := a.store.CustomerByEmail(ctx, email)
	hash := ""
	switch {
	case err == nil:
		hash = c.PasswordHash
	case model.ErrorCodeOf(err) != model.CodeNotFound:
		return nil, err
	}
	rehash, err := a.passwords.Verify(ctx, hash, pw)
	switch {
	case errors.Is(err, password.ErrMismatch):
		return nil, errSignIn
	case err != nil:
		return nil, fmt.Errorf("verify password: %w", err)
	case rehash:
		a.upgradeHash(ctx, c.ID, pw)
	}
	return c, nil
}

// upgradeHash stores a hash of the current parameters for a password that matched a hash
// of older ones. A failure only postpones it to the next sign-in.
func (a *accounts) upgradeHash(ctx context.Context, customerID, pw string) {
	if hash, err := a.passwords.Hash(ctx, pw); err == nil {
		_ = a.store.SetPassword(ctx, customerID, hash)
	}
}

// changePassword checks the current password of the customer and sets a new one.
func (a *accounts) changePassword(ctx context.Context, customerID, current, next string) error {
	if err := checkNewPassword("newPassword", next); err != nil {
		return err
	}
	if err := limit(ctx, a.limits.PerAccount, "signin-customer:"+customerID); err != nil {
		return err
	}
	c, err := a.store.Customer(ctx, customerID)
	if err != nil {
		return err
	}
	if len(current) > password.MaxLength {
		return errSignIn
	}
	if _, err := a.passwords.Verify(ctx, c.PasswordHash, current); errors.Is(err, password.ErrMismatch) {
		return model.Errorf(model.CodeUnauthenticated, "the current password is wrong")
	} else if err != nil {
		return err
	}
	hash, err := a.passwords.Hash(ctx, next)
	if err != nil {
		return err
	}
	return a.store.SetPassword(ctx, customerID, hash)
}

// requestPasswordReset mails a reset token when email has an account with a password, and
// does nothing otherwise: the answer is the same either way.
func (a *accounts) requestPasswordReset(ctx context.Context, email string) error {
	email, err := checkEmail("email", email)
	if err != nil {
		return err
	}
	if err := limit(ctx, a.limits.PerClient, "signin:"+ClientKey(ctx)); err != nil {
		return err
	}
	if err := limit(ctx, a.limits.PerAccount, "reset-account:"+email); err != nil {
		return nil // the same answer as a mail sent: the limit must not tell that the account exists
	}
	c, err := a.store.CustomerByEmail(ctx, email)
	switch {
	case model.ErrorCodeOf(err) == model.CodeNotFound || err == nil && !c.HasPassword():
		return nil
	case err != nil:
		return err
	}
	return a.store.IssueToken(ctx, c.ID, model.ResetPassword)
}

// resetPassword sets a new password with a reset token and returns the customer's id.
func (a *accounts) resetPassword(ctx context.Context, token, next string) (string, error) {
	if err := checkToken(token); err != nil {
		return "", err
	}
	if err := checkNewPassword("newPassword", next); err != nil {
		return "", err
	}
	hash, err := a.passwords.Hash(ctx, next)
	if err != nil {
		return "", err
	}
	return a.store.ResetPassword(ctx, token, hash)
}

// checkToken refuses what cannot be a mailed token without a lookup.
func checkToken(token string) error {
	if token == "" || len(token) > 64 {
		return model.InvalidArgument("token", "the token is unknown, used or expired: ask for a new mail")
	}
	return nil
}

// orderByNumber answers a guest's lookup of their order.
func (a *accounts) orderByNumber(ctx context.Context, number int, email string) (*model.Order, error) {
	norm, ok := model.NormalizeEmail(email)
	if !ok || number <= 0 {
		return nil, model.NotFound("order")
	}
	if err := limit(ctx, a.limits.PerClient, "lookup:"+ClientKey(ctx)); err != nil {
		return nil, err
	}
	return a.store.OrderByNumber(ctx, int64(number), norm)
}

// addressArgs decodes an address id and checks an address given with it.
func addressArgs(gid string, addr *model.Address) (string, error) {
	id, err := decodeID("id", model.TypeCustomerAddress, gid)
	if err != nil {
		return "", err
	}
	if addr != nil {
		if err := checkAddressAt("address", *addr); err != nil {
			return "", err
		}
	}
	return id, nil
}

// newAccounts returns the accounts of cfg.
func newAccounts(cfg Config) *accounts {
	a := &accounts{store: cfg.Customers, passwords: cfg.Passwords, limits: cfg.AccountLimits}
	if a.passwords == nil {
		a.passwords = password.NewHasher(password.Default, 4)
	}
	return a
}

// guestCart returns the guest cart named by a guest cart token given at sign-in, or nil
// without one. A cart that is not a guest's is NOT_FOUND: the check comes before anything
// changes.
func (r *Resolver) guestCart(ctx context.Context, token *string) (*model.Cart, error) {
	if token == nil {
		return nil, nil
	}
	c, err := r.Commerce.CartByToken(ctx, *token)
	if err != nil || c.CustomerID != "" || c.Status != model.CartOpen {
		return nil, notFoundUnless(err, "cart")
	}
	return c, nil
}

// signedIn gives a customer who proved who they are an access token, and their cart with
// the guest cart merged into it.
func (r *Resolver) signedIn(ctx context.Context, c *model.Customer, guest *model.Cart) (*model.CustomerAccessToken, error) {
	var cart *model.Cart
	var err error
	if guest != nil {
		cart, err = r.Commerce.AttachCartToCustomer(ctx, guest.ID, c.ID)
	} else if cart, err = r.Commerce.CustomerCart(ctx, c.ID); model.ErrorCodeOf(err) == model.CodeNotFound {
		cart, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	token, expires, err := r.Auth.startSession(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	return &model.CustomerAccessToken{AccessToken: token, ExpiresAt: expires, Customer: c, Cart: cart}, nil
}
