package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const salesQuery = `query($from: Time!, $to: Time!, $bucket: SalesBucket!, $group: SalesGroupBy, $zone: String) {
  salesAnalytics(from: $from, to: $to, bucket: $bucket, groupBy: $group, timeZone: $zone) {
    from to
    series { product { id } points { bucketStart revenue orders units } totals { revenue orders units } }
    totals { revenue cost orders units averageOrderValue margin }
  }
}`

// today is the range of the current UTC day.
func today() map[string]any {
	midnight := time.Now().UTC().Truncate(24 * time.Hour)
	return map[string]any{"from": midnight.Format(time.RFC3339), "to": midnight.Add(24 * time.Hour).Format(time.RFC3339)}
}

func salesTotals(t *testing.T, s *shop, vars map[string]any) map[string]any {
	t.Helper()
	return s.must(s.merchandiser, salesQuery, vars)["salesAnalytics"].(map[string]any)["totals"].(map[string]any)
}

// An order placed a moment ago counts at once (real-time aggregation over the rollups), by
// product too; its cancellation takes it back out; the top products rank it.
func TestSalesAnalyticsCountOrdersAtOnce(t *testing.T) {
	s := newShop(t, 40)
	p1, p2 := s.product(1, 10), s.product(2, 10)
	order, code := s.checkout("", s.guestCart(map[string]int{p1: 2, p2: 1}), "analytics-1")
	if code != "" {
		t.Fatalf("checkout: %s", code)
	}
	total := order["total"].(map[string]any)["amount"].(string)

	vars := today()
	vars["bucket"] = "HOUR"
	got := salesTotals(t, s, vars)
	if got["revenue"] != total || got["orders"] != 1.0 || got["units"] != 3.0 || got["averageOrderValue"] != total {
		t.Fatalf("totals after one order of %s: got %v", total, got)
	}

	// In a zone half an hour off UTC, its own hours: the order counts the same.
	vars["zone"] = "Asia/Kolkata"
	if got := salesTotals(t, s, vars); got["revenue"] != total || got["orders"] != 1.0 || got["units"] != 3.0 {
		t.Fatalf("totals in Asia/Kolkata hours: got %v; want the order's", got)
	}
	delete(vars, "zone")

	vars["group"] = "PRODUCT"
	series := s.must(s.merchandiser, salesQuery, vars)["salesAnalytics"].(map[string]any)["series"].([]any)
	units := map[string]float64{}
	for _, x := range series {
		sr := x.(map[string]any)
		units[sr["product"].(map[string]any)["id"].(string)] = sr["totals"].(map[string]any)["units"].(float64)
		if n := len(sr["points"].([]any)); n != 24 {
			t.Fatalf("a day of hours has %d points; want 24", n)
		}
	}
	if len(units) != 2 || units[p1] != 2 || units[p2] != 1 {
		t.Fatalf("units by product: got %v; want %s: 2, %s: 1", units, p1, p2)
	}

	top := s.must(s.merchandiser, `query($from: Time!, $to: Time!) { topProducts(from: $from, to: $to, by: UNITS, first: 1) { product { id } units } }`, today())
	if first := top["topProducts"].([]any)[0].(map[string]any); first["product"].(map[string]any)["id"] != p1 || first["units"] != 2.0 {
		t.Fatalf("top product by units: got %v; want %s with 2", first, p1)
	}

	s.must(s.merchandiser, `mutation($id: ID!) { cancelOrder(id: $id) { status } }`, map[string]any{"id": order["id"]})
	delete(vars, "group")
	got = salesTotals(t, s, vars)
	if got["revenue"] != "0.00" || got["orders"] != 0.0 || got["units"] != 0.0 || got["averageOrderValue"] != nil {
		t.Fatalf("totals after the cancellation: got %v; want zero", got)
	}
}

// Ranges that cannot be answered are refused as BAD_USER_INPUT with the argument at fault.
func TestSalesAnalyticsRefusesBadRanges(t *testing.T) {
	s := newShop(t, 5)
	now := time.Now().UTC()
	cases := []struct {
		name, from, to, bucket, zone, arg string
	}{
		{"to before from", now.Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339), "HOUR", "UTC", "to"},
		{"too many buckets", now.AddDate(-1, 0, 0).Format(time.RFC3339), now.Format(time.RFC3339), "HOUR", "UTC", "to"},
		{"unknown zone", now.Add(-time.Hour).Format(time.RFC3339), now.Format(time.RFC3339), "HOUR", "Mars/Olympus", "timeZone"},
	}
	for _, c := range cases {
		_, errs := gql(t, s.base, s.merchandiser, salesQuery, map[string]any{"from": c.from, "to": c.to, "bucket": c.bucket, "zone": c.zone})
		if len(errs) != 1 {
			t.Fatalf("%s: got errors %v; want one", c.name, errs)
		}
		ext := errs[0]["extensions"].(map[string]any)
		if ext["code"] != "BAD_USER_INPUT" || fmt.Sprint(ext["argumentPath"]) != "["+c.arg+"]" {
			t.Errorf("%s: got %v; want BAD_USER_INPUT on %s", c.name, ext, c.arg)
		}
	}
	if _, errs := gql(t, s.base, "", salesQuery, map[string]any{"from": now.Add(-time.Hour), "to": now, "bucket": "HOUR"}); len(errs) != 1 ||
		errs[0]["extensions"].(map[string]any)["code"] != "UNAUTHENTICATED" {
		t.Errorf("without a token: got %v; want UNAUTHENTICATED", errs)
	}
}

// The sales ticker sends today's figures at once and again when an order is placed.
func TestSalesTickerFollowsOrders(t *testing.T) {
	s := newShop(t, 20)
	p := s.product(3, 10)
	ticks := sseTicks(t, s.base, s.merchandiser)
	if first := nextTick(t, ticks); first.Today.Orders != 0 {
		t.Fatalf("first tick: %+v; want no orders yet", first)
	}
	if _, code := s.checkout("", s.guestCart(map[string]int{p: 1}), "ticker-1"); code != "" {
		t.Fatalf("checkout: %s", code)
	}
	tick := nextTick(t, ticks)
	if tick.Today.Orders != 1 || tick.ThisHour.Orders != 1 || tick.Today.Revenue == "0.00" {
		t.Fatalf("tick after an order: %+v; want one order", tick)
	}
}

type salesTick struct {
	Today, ThisHour struct {
		Revenue string
		Orders  int
	}
}

func sseTicks(t *testing.T, base, token string) <-chan salesTick {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": `subscription { salesTicker { today { revenue orders } thisHour { revenue orders } } }`})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	ticks := make(chan salesTick)
	go func() {
		defer close(ticks)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var r struct {
				Data struct{ SalesTicker salesTick }
			}
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && json.Unmarshal([]byte(data), &r) == nil {
				select {
				case ticks <- r.Data.SalesTicker:
				case <-t.Context().Done():
					return
				}
			}
		}
	}()
	return ticks
}

func nextTick(t *testing.T, ticks <-chan salesTick) salesTick {
	t.Helper()
	select {
	case tick, ok := <-ticks:
		if !ok {
			t.Fatal("the ticker subscription ended")
		}
		return tick
	case <-time.After(20 * time.Second):
		t.Fatal("no tick within 20s")
	}
	return salesTick{}
}
