package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/db/dbtest"
)

// clientsDir holds the third-party clients run by these tests (Node packages pinned by its
// package-lock.json; scripts/test.sh installs them with npm ci).
const clientsDir = "testdata/clients"

// runClient runs a Node script of clientsDir with args and returns its standard output.
// Under `make test` a missing Node or missing packages fail the test; a plain `go test`
// skips it.
func runClient(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(clientsDir, "node_modules"))
	}
	if err != nil {
		if os.Getenv(dbtest.RequireEnv) != "" {
			t.Fatalf("the Node clients are not installed (%v): scripts/test.sh runs npm ci in %s", err, clientsDir)
		}
		t.Skipf("needs Node and the packages of %s: run `make test`, or npm ci there", clientsDir)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = clientsDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	return out
}

// The graphql-http audit of the GraphQL-over-HTTP specification passes every MUST and
// every SHOULD: no error, no warning, no notice.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	env := newTestEnv(t)
	base, _ := startServer(t, env)
	out := runClient(t, "audit.mjs", base+"/graphql")
	n := 0
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); n++ {
		var r struct{ ID, Name, Status, Reason string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if r.Status != "ok" {
			t.Errorf("audit %s %q: %s: %s", r.ID, r.Name, r.Status, r.Reason)
		}
	}
	if n < 30 {
		t.Fatalf("the audit reported %d results; want the whole list:\n%s", n, out)
	}
}

// The graphql-ws client library: a subscription receives alerts and unsubscribes; the
// server closes a socket that reuses a live operation id with 4409 and one with a bad token
// with 4403.
func TestGraphQLWSClient(t *testing.T) {
	env := newTestEnv(t)
	e := newAlertsEnv(t, 1, env)
	row := e.rows[1]
	out := runClient(t, "ws.mjs", "ws"+strings.TrimPrefix(e.bases[0], "http")+"/graphql", e.bases[0]+"/graphql", e.token,
		"gid://storefront/Product/"+row.product, "gid://storefront/Warehouse/"+row.warehouse)
	var got struct {
		Alert               string
		Complete            bool
		Duplicate, BadToken int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("ws.mjs printed %q: %v", out, err)
	}
	if got.Alert == "" || strings.HasPrefix(got.Alert, "{") || strings.HasPrefix(got.Alert, "null") || !got.Complete {
		t.Errorf("subscription: got alert %q, completed %v; want an alert kind, then completion", got.Alert, got.Complete)
	}
	if got.Duplicate != 4409 {
		t.Errorf("two subscriptions under one id: closed with %d; want 4409", got.Duplicate)
	}
	if got.BadToken != 4403 {
		t.Errorf("a bad token: closed with %d; want 4403", got.BadToken)
	}
}
