//go:build fleet

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// searchCluster is the two-node OpenSearch cluster of make test-fleet (scripts/search.sh
// cluster-start): node-1 manages it and holds data, node-2 holds data.
type searchCluster struct {
	urls []string
	dir  string // the cluster's directory, to stop and start node-2
	port string // node-1's HTTP port, the cluster's base port
}

func testSearchCluster(t *testing.T) searchCluster {
	t.Helper()
	c := searchCluster{urls: strings.Split(os.Getenv("TEST_SEARCH_CLUSTER_URLS"), ","),
		dir: os.Getenv("TEST_SEARCH_CLUSTER_DIR"), port: os.Getenv("TEST_SEARCH_CLUSTER_PORT")}
	if len(c.urls) != 2 || c.dir == "" || c.port == "" {
		t.Fatal("TEST_SEARCH_CLUSTER_URLS, _DIR and _PORT are not set: run make test-fleet")
	}
	return c
}

// script runs scripts/search.sh with args.
func (c searchCluster) script(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join("scripts", "search.sh"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("search.sh %v: %v\n%s", args, err, out)
	}
}

// awaitGreen waits until every shard copy of the indices named index* is assigned.
func (c searchCluster) awaitGreen(t *testing.T, index string) {
	t.Helper()
	waitLonger(t, "the search index's replica to be assigned (green)", 2*time.Minute, func() bool {
		res, err := http.Get(c.urls[0] + "/_cluster/health/" + index + "*?wait_for_status=green&timeout=1s")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var h struct{ Status string }
		return json.NewDecoder(res.Body).Decode(&h) == nil && h.Status == "green"
	})
}

// indexVersions returns the version of every document behind the alias index.
func (c searchCluster) indexVersions(t *testing.T, index string) map[string]int64 {
	t.Helper()
	res, err := http.Get(c.urls[0] + "/" + index + "/_search?size=10000&_source=false&version=true")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct {
		Hits struct {
			Hits []struct {
				ID      string `json:"_id"`
				Version int64  `json:"_version"`
			}
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, h := range r.Hits.Hits {
		out[h.ID] = h.Version
	}
	return out
}

// With the index on two nodes (SEARCH_REPLICAS=1, ELASTICSEARCH_URL naming both), stopping a
// node in the middle of searches and price changes fails no search and no change, the node
// rejoins and gets its copy back (green), and every change reaches the index.
func TestFleetSearchClusterLosesANode(t *testing.T) {
	c := testSearchCluster(t)
	index := fmt.Sprintf("fleet_%d", rand.Uint32())
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, c.urls[0]+"/"+index+"*", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	})
	env := newTestEnv(t)
	env["ELASTICSEARCH_URL"] = strings.Join(c.urls, ",")
	env["SEARCH_INDEX"], env["SEARCH_REPLICAS"] = index, "1"
	env["SEARCH_RECONCILE_INTERVAL"] = "1h" // no repair behind the indexer's back
	env["SEARCH_TIMEOUT"] = "5s"            // a loaded machine is no node failure
	env["RATE_LIMIT_PER_SECOND"] = "0"
	runCommand(t, env, "seed", "--products", "200", "--seed", "6")
	base, _, serverLog := startServerWithLog(t, env)
	s := shopOn(t, env, base)
	waitLonger(t, "searches to be answered by the cluster", 2*time.Minute, func() bool {
		return searchResult(t, s, "", map[string]any{"q": "oak"})["backend"] == "elasticsearch"
	})
	c.awaitGreen(t, index)

	rows, err := s.db.Query(context.Background(), `SELECT id::text FROM products ORDER BY sku LIMIT 40`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var degraded, changes atomic.Int64
	l := startLoad(4, func(w, i int) string {
		if w == 0 { // the writer: price changes, each an index update
			id := "gid://storefront/Product/" + ids[i%len(ids)]
			if _, failed := request(base, s.merchandiser, `mutation($id: ID!, $p: Decimal!) { updateProduct(id: $id, input: {price: $p}) { version } }`,
				map[string]any{"id": id, "p": fmt.Sprintf("%d.%02d", 100+i, i%100)}, nil); failed != "" {
				return "price change: " + failed
			}
			changes.Add(1)
			time.Sleep(20 * time.Millisecond)
			return ""
		}
		data, failed := request(base, "", searchQuery, map[string]any{"q": []string{"oak", "lamp", "rug", "table"}[i%4]}, nil)
		if failed != "" {
			return "search: " + failed
		}
		if data["search"].(map[string]any)["backend"] != "elasticsearch" {
			degraded.Add(1)
		}
		return ""
	})
	time.Sleep(time.Second)
	c.script(t, "stop", filepath.Join(c.dir, "node-2"))
	t.Cleanup(func() { c.script(t, "cluster-start", c.dir, c.port) }) // the cluster serves later runs
	time.Sleep(3 * time.Second)
	c.script(t, "cluster-start", c.dir, c.port)
	c.awaitGreen(t, index)
	time.Sleep(time.Second)
	l.end(t, "the loss and return of a search node")
	// Searches that the cluster did not answer within SEARCH_TIMEOUT (a node starting, a
	// replica recovering on a starved machine) were answered by PostgreSQL: none failed.
	t.Logf("%d price changes; %d searches answered by PostgreSQL instead", changes.Load(), degraded.Load())
	if degraded.Load() > 0 {
		for _, line := range strings.Split(serverLog(), "\n") {
			if strings.Contains(line, "primary engine failed") {
				t.Log(line)
			}
		}
	}

	// No lost update: the index holds every product at its version in PostgreSQL.
	var want map[string]int64
	waitLonger(t, "the index to hold every product at its version", time.Minute, func() bool {
		rows, err := s.db.Query(context.Background(), `SELECT id::text, version FROM products`)
		if err != nil {
			t.Fatal(err)
		}
		want = map[string]int64{}
		var id string
		var v int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error { want[id] = v; return nil }); err != nil {
			t.Fatal(err)
		}
		got := c.indexVersions(t, index)
		for id, v := range want {
			if got[id] != v {
				return false
			}
		}
		return len(got) == len(want)
	})
}
