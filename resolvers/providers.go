package resolvers

import (
	"context"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/idp"
)

// Provider checks the bearer tokens of an external identity provider (idp.Verifier).
type Provider interface {
	// Mine reports whether a token claims to come from the provider.
	Mine(raw string) bool
	Verify(ctx context.Context, raw string) (idp.Identity, error)
}

// Identities finds or creates the customer of a provider's subject (store.Store).
type Identities interface {
	CustomerByIdentity(ctx context.Context, issuer, subject string, email *string, name string) (*model.Customer, error)
}

// providerAuth accepts a provider's tokens: a merchandiser when the provider's role claim
// says so, else the customer of the token's subject, created at first sight.
type providerAuth struct {
	provider   Provider
	identities Identities
	// customers remembers the customer id of each subject seen, which never changes, so
	// that a request costs no lookup.
	customers *lru.Cache[string, string]
}

// AcceptProvider makes a accept the bearer tokens of provider beside its own.
func (a *Auth) AcceptProvider(provider Provider, identities Identities) {
	customers, _ := lru.New[string, string](10_000) // fails for a size <= 0 only
	a.provider = &providerAuth{provider: provider, identities: identities, customers: customers}
}

// principal returns the caller of a provider's token.
func (p *providerAuth) principal(ctx context.Context, raw string) (Principal, error) {
	id, err := p.provider.Verify(ctx, raw)
	if err != nil {
		return Principal{}, err
	}
	if id.Merchandiser {
		return Principal{Role: model.RoleMerchandiser, TokenID: id.TokenID, Expires: id.Expires}, nil
	}
	key := id.Issuer + "\x00" + id.Subject
	customerID, ok := p.customers.Get(key)
	if !ok {
		c, err := p.identities.CustomerByIdentity(ctx, id.Issuer, id.Subject, id.Email, id.Name)
		if err != nil {
			return Principal{}, fmt.Errorf("customer of %s: %w", id.Subject, err)
		}
		customerID = c.ID
		p.customers.Add(key, customerID)
	}
	return Principal{Role: model.RoleCustomer, CustomerID: customerID, TokenID: id.TokenID, Expires: id.Expires}, nil
}
