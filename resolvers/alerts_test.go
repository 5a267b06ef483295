package resolvers_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/seed"
	"github.com/homegoods/storefront/store"
)

// serverTimeout bounds reads and writes of the test server, as the real server's timeouts
// do, only much shorter: streams must outlive it.
const serverTimeout = 200 * time.Millisecond

// An SSE subscription outlives the server's read and write timeouts, and each of its events
// loads the product afresh: a renamed product shows its new name in the next alert.
func TestSubscriptionEventsLoadFreshAndOutliveServerTimeouts(t *testing.T) {
	ctx := t.Context()
	pool := dbtest.New(t)
	if _, err := seed.Catalog(ctx, pool, seed.Options{Products: 3, Seed: 5}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	alerts := cache.NewAlerts(cache.NewMemoryBackend(0), log)
	go alerts.Run(ctx)
	for !alerts.Live() {
		time.Sleep(5 * time.Millisecond)
	}
	auth := resolvers.NewAuth([]byte(testSecret), resolvers.AuthOptions{})
	srv := httptest.NewUnstartedServer(resolvers.NewHandler(resolvers.Config{
		Catalog: store.New(pool), Alerts: alerts, Auth: auth, Log: log,
		ComplexityLimit: 10_000, DepthLimit: 12, LoaderWait: time.Millisecond,
	}))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = serverTimeout, serverTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	token, err := auth.Token(model.RoleMerchandiser, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	var product, warehouse string
	if err := pool.QueryRow(ctx, `SELECT (SELECT id::text FROM products LIMIT 1), (SELECT id::text FROM warehouses LIMIT 1)`).Scan(&product, &warehouse); err != nil {
		t.Fatal(err)
	}
	events := sseSubscribe(t, srv.URL, token, `subscription { inventoryAlerts { available product { name } } }`)
	for i, name := range []string{"Before", "After"} {
		time.Sleep(3 * serverTimeout)
		if _, err := pool.Exec(ctx, `UPDATE products SET name = $2 WHERE id = $1`, product, name); err != nil {
			t.Fatal(err)
		}
		alert := model.InventoryAlert{ID: fmt.Sprint(i), Kind: model.AlertLowStock, ProductID: product, WarehouseID: warehouse, Available: i}
		if err := alerts.Publish(ctx, []model.InventoryAlert{alert}); err != nil {
			t.Fatal(err)
		}
		select {
		case got, ok := <-events:
			if !ok {
				t.Fatalf("event %d: the stream ended", i)
			}
			if want := fmt.Sprintf(`{"data":{"inventoryAlerts":{"available":%d,"product":{"name":%q}}}}`, i, name); got != want {
				t.Fatalf("event %d: got %s; want %s", i, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d: none within 10s", i)
		}
	}
}

// sseSubscribe posts a subscription for server-sent events and returns the data of its
// events, closed when the stream ends.
func sseSubscribe(t *testing.T, url, token, query string) <-chan string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("SSE response: got %d %s", res.StatusCode, ct)
	}
	events := make(chan string, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
	}()
	return events
}
