package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/homegoods/storefront/graph/model"
)

// reservedStock returns a shop whose first product has 10 units in the first warehouse, 3
// of them reserved by an order, none in the second; and the outbox mark after that.
func reservedStock(t *testing.T) (sh *shop, p *model.Product, w0, w1 string, mark int) {
	sh = newShop(t)
	p = sh.products[0]
	sh.stock(p, 10)
	placedOrder(t, sh, "k")
	return sh, p, sh.warehouses[0], sh.warehouses[1], sh.lastOutboxID()
}

func TestStockChanges(t *testing.T) {
	sh, p, w0, w1, mark := reservedStock(t)
	ctx := context.Background()

	steps := []struct {
		name  string
		do    func() (*model.InventoryLevel, error)
		level string // quantity/reserved/available/threshold after
	}{
		{"set", func() (*model.InventoryLevel, error) { return sh.s.SetStock(ctx, p.ID, w0, 7, "count", "ann") }, "7/3/4/5"},
		{"adjust down", func() (*model.InventoryLevel, error) { return sh.s.AdjustStock(ctx, p.ID, w0, -4, "damaged", "bo") }, "3/3/0/5"},
		{"stock a new warehouse", func() (*model.InventoryLevel, error) { return sh.s.AdjustStock(ctx, p.ID, w1, 6, "delivery", "cy") }, "6/0/6/5"},
		{"threshold", func() (*model.InventoryLevel, error) { return sh.s.SetLowStockThreshold(ctx, p.ID, w1, 8) }, "6/0/6/8"},
		{"set the same", func() (*model.InventoryLevel, error) { return sh.s.SetStock(ctx, p.ID, w1, 6, "recount", "cy") }, "6/0/6/8"},
	}
	for _, st := range steps {
		l, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := fmt.Sprintf("%d/%d/%d/%d", l.Quantity, l.Reserved, l.Available, l.LowStockThreshold); got != st.level || l.ProductID != p.ID {
			t.Errorf("%s: got %s; want %s", st.name, got, st.level)
		}
	}

	ms, err := sh.s.StockMovements(ctx, p.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var moves []string
	for _, m := range ms {
		moves = append(moves, fmt.Sprintf("w%d %+d =%d %s by %s", sh.warehouseIndex(m.WarehouseID), m.Delta, m.QuantityAfter, m.Reason, m.Actor))
	}
	// Newest first; the threshold and a set to the same quantity are not movements.
	want := []string{"w1 +6 =6 delivery by cy", "w0 -4 =3 damaged by bo", "w0 -3 =7 count by ann"}
	if !slices.Equal(moves, want) {
		t.Errorf("movements: got %v; want %v", moves, want)
	}
	// Every change is in the outbox; the row created for the new warehouse starts at version 1.
	got := sh.stockEvents(sh.outboxSince(mark))
	wantEvents := []string{"p0 w0 4->0 @4", "p0 w0 7->4 @3", "p0 w1 0->6 @2", "p0 w1 6->6 @3", "p0 w1 6->6 @4"}
	if !slices.Equal(got, wantEvents) {
		t.Errorf("stock events: got %v; want %v", got, wantEvents)
	}
	thresholds := sh.count(`SELECT count(*) FROM outbox WHERE id > $1 AND payload->>'low_stock_threshold' = '8'`, mark)
	if thresholds != 2 {
		t.Errorf("%d events carry the new threshold; want 2", thresholds)
	}
}

func TestStockRefusals(t *testing.T) {
	sh, p, w0, w1, mark := reservedStock(t)
	ctx := context.Background()

	for _, c := range []struct {
		name     string
		do       func() (*model.InventoryLevel, error)
		code     model.ErrorCode
		argument string
	}{
		{"set below reserved", func() (*model.InventoryLevel, error) { return sh.s.SetStock(ctx, p.ID, w0, 2, "count", "a") }, model.CodeConflict, "quantity"},
		{"adjust below reserved", func() (*model.InventoryLevel, error) { return sh.s.AdjustStock(ctx, p.ID, w0, -8, "loss", "a") }, model.CodeConflict, "delta"},
		{"adjust below zero", func() (*model.InventoryLevel, error) { return sh.s.AdjustStock(ctx, p.ID, w0, -11, "loss", "a") }, model.CodeBadUserInput, "delta"},
		{"negative set", func() (*model.InventoryLevel, error) { return sh.s.SetStock(ctx, p.ID, w0, -1, "count", "a") }, model.CodeBadUserInput, "quantity"},
		{"zero delta", func() (*model.InventoryLevel, error) { return sh.s.AdjustStock(ctx, p.ID, w0, 0, "count", "a") }, model.CodeBadUserInput, "delta"},
		{"no reason", func() (*model.InventoryLevel, error) { return sh.s.SetStock(ctx, p.ID, w0, 4, " ", "a") }, model.CodeBadUserInput, "reason"},
		{"negative threshold", func() (*model.InventoryLevel, error) { return sh.s.SetLowStockThreshold(ctx, p.ID, w0, -1) }, model.CodeBadUserInput, "threshold"},
		{"remove from an empty warehouse", func() (*model.InventoryLevel, error) { return sh.s.AdjustStock(ctx, p.ID, w1, -1, "loss", "a") }, model.CodeNotFound, ""},
		{"threshold of an empty warehouse", func() (*model.InventoryLevel, error) { return sh.s.SetLowStockThreshold(ctx, p.ID, w1, 2) }, model.CodeNotFound, ""},
		{"unknown product", func() (*model.InventoryLevel, error) {
			return sh.s.SetStock(ctx, "7d0e8a4e-5c1b-4c39-9f49-5d7c1f0f4a11", w0, 4, "count", "a")
		}, model.CodeNotFound, ""},
		{"unknown warehouse", func() (*model.InventoryLevel, error) {
			return sh.s.SetStock(ctx, p.ID, "7d0e8a4e-5c1b-4c39-9f49-5d7c1f0f4a11", 4, "count", "a")
		}, model.CodeNotFound, ""},
	} {
		_, err := c.do()
		wantCode(t, err, c.code, c.argument)
	}
	if sh.levels(p) != "10/3 - - -" || sh.lastOutboxID() != mark || sh.count(`SELECT count(*) FROM stock_movements`) != 0 {
		t.Errorf("refusals changed the stock to %s or wrote outbox rows or movements", sh.levels(p))
	}
	_, err := sh.s.StockMovements(ctx, p.ID, 0)
	wantCode(t, err, model.CodeBadUserInput, "first")
}
