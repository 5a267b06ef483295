package resolvers

import (
	"context"

	"github.com/homegoods/storefront/graph/model"
)

// Alerts streams the inventory alerts of the whole fleet.
type Alerts interface {
	// Subscribe returns the alerts that match until ctx ends, when the channel is closed. A
	// subscriber that falls behind loses alerts, and the next one it gets says Lagged.
	Subscribe(ctx context.Context, match func(*model.InventoryAlert) bool) <-chan *model.InventoryAlert
}

// alertFilter matches the alerts of one warehouse, when set, and of some products, when set.
type alertFilter struct {
	warehouseID *string
	products    map[string]bool
}

// newAlertFilter decodes the global ids of the inventoryAlerts arguments.
func newAlertFilter(warehouseID *string, productIDs []string) (alertFilter, error) {
	w, err := decodeOptionalID("warehouseId", model.TypeWarehouse, warehouseID)
	if err != nil {
		return alertFilter{}, err
	}
	f := alertFilter{warehouseID: w}
	if productIDs == nil {
		return f, nil
	}
	ids, err := decodeIDs("productIds", model.TypeProduct, productIDs)
	if err != nil {
		return alertFilter{}, err
	}
	f.products = make(map[string]bool, len(ids))
	for _, id := range ids {
		f.products[id] = true
	}
	return f, nil
}

func (f alertFilter) match(a *model.InventoryAlert) bool {
	return (f.warehouseID == nil || a.WarehouseID == *f.warehouseID) && (f.products == nil || f.products[a.ProductID])
}
