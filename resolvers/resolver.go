// Package resolvers implements the GraphQL schema: thin resolvers over the store, per-request
// dataloaders, authorization, error presentation and the HTTP handler that serves it all.
package resolvers

import (
	"context"

	"github.com/homegoods/storefront/graph/model"
)

// Batches are the loads by key behind the dataloaders: the catalog store itself, or the
// cache in front of it.
type Batches interface {
	ProductsByIDs(ctx context.Context, ids []string) ([]*model.Product, error)
	CategoriesByIDs(ctx context.Context, ids []string) ([]*model.Category, error)
	BrandsByIDs(ctx context.Context, ids []string) ([]*model.Brand, error)
	Availability(ctx context.Context, productIDs []string) (map[string]*model.Availability, error)
	ProductsBySKUs(ctx context.Context, skus []string) ([]*model.Product, error)
	ProductsBySlugs(ctx context.Context, slugs []string) ([]*model.Product, error)
}

// Catalog is what the resolvers need from the catalog store.
type Catalog interface {
	Batches
	ListProducts(ctx context.Context, f model.ProductFilter, sort model.ProductSort, page model.Page) (*model.ProductConnection, error)
	CountProducts(ctx context.Context, f model.ProductFilter) (int, error)
	CreateProduct(ctx context.Context, in model.CreateProductInput) (*model.Product, error)
	UpdateProduct(ctx context.Context, id string, in model.UpdateProductInput) (*model.Product, error)
	ArchiveProduct(ctx context.Context, id string) (*model.Product, error)

	RootCategories(ctx context.Context) ([]*model.Category, error)
	CategoryBySlug(ctx context.Context, slug string) (*model.Category, error)
	ChildrenOf(ctx context.Context, parentIDs []string) (map[string][]*model.Category, error)
	ProductCounts(ctx context.Context, ids []string) (map[string]int, error)
	CreateCategory(ctx context.Context, in model.CreateCategoryInput) (*model.Category, error)
	UpdateCategory(ctx context.Context, id string, in model.UpdateCategoryInput) (*model.Category, error)

	Brands(ctx context.Context) ([]*model.Brand, error)
	CreateBrand(ctx context.Context, in model.BrandInput) (*model.Brand, error)
	UpdateBrand(ctx context.Context, id string, in model.UpdateBrandInput) (*model.Brand, error)

	Inventory(ctx context.Context, productIDs []string) (map[string][]*model.InventoryLevel, error)
	Warehouses(ctx context.Context) ([]*model.Warehouse, error)
	WarehousesByIDs(ctx context.Context, ids []string) ([]*model.Warehouse, error)
}

// Resolver is the root of the resolvers: what they call is the handler's Config (NewHandler
// makes the one from the other), plus the accounts made from it. gqlgen never regenerates
// this file.
type Resolver struct {
	Config
	accounts *accounts
}
