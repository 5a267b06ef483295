package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/homegoods/storefront/mail/mailtest"
)

// readmeVariables gives each operation of the README the variables a reader fills in from
// the answers of earlier blocks, as the README's comments say. An operation missing here
// fails the test: every example runs.
var readmeVariables = map[string]func(r readmeAnswers) map[string]any{
	"Tree": nil,
	"Browse": func(r readmeAnswers) map[string]any {
		return map[string]any{"category": r.get("Tree", "categories", 0, "id")}
	},
	"CreateProduct": func(r readmeAnswers) map[string]any {
		return map[string]any{"category": r.get("Tree", "categories", 0, "id"), "sku": r.sku}
	},
	"UpdateProduct": func(r readmeAnswers) map[string]any {
		return map[string]any{"id": r.get("CreateProduct", "createProduct", "id"), "version": r.get("CreateProduct", "createProduct", "version")}
	},
	"CreateCart": nil,
	"AddToCart": func(r readmeAnswers) map[string]any {
		return map[string]any{"cart": r.get("CreateCart", "createCart", "cart", "id"), "product": r.stocked}
	},
	"Checkout": func(r readmeAnswers) map[string]any {
		return map[string]any{"cart": r.get("CreateCart", "createCart", "cart", "id"), "key": r.sku}
	},
	"MarkPaid": func(r readmeAnswers) map[string]any {
		return map[string]any{"order": r.get("Checkout", "checkout", "id")}
	},
	"Fulfil": func(r readmeAnswers) map[string]any {
		return map[string]any{"order": r.get("Checkout", "checkout", "id")}
	},
	"SignUp": func(readmeAnswers) map[string]any { return map[string]any{"cart": nil} },
	"VerifyEmail": func(r readmeAnswers) map[string]any {
		return map[string]any{"token": r.mailedToken("ann@example.com")}
	},
	"SignIn":     nil,
	"AddAddress": nil,
	"Me":         nil,
	"SignOut":    nil,
	"FindOrder": func(r readmeAnswers) map[string]any {
		return map[string]any{"number": r.get("Checkout", "checkout", "number")}
	},
	"Alerts": nil,
	"Search": func(readmeAnswers) map[string]any { return map[string]any{"q": "oak tabel"} },
	"Sales":  func(readmeAnswers) map[string]any { return map[string]any{"brands": nil} },
	"Ticker": nil,
}

// readmeMerchandiser are the operations the README runs with a merchandiser's token.
var readmeMerchandiser = map[string]bool{"CreateProduct": true, "UpdateProduct": true, "MarkPaid": true, "Fulfil": true, "Sales": true, "Alerts": true, "Ticker": true}

// readmeCustomer are the operations the README runs with the token of its SignIn.
var readmeCustomer = map[string]bool{"AddAddress": true, "Me": true, "SignOut": true}

type readmeAnswers struct {
	t       *testing.T
	mails   *mailtest.Server
	data    map[string]map[string]any // by operation name
	sku     string                    // fresh for this run, as the README asks
	stocked string                    // a product with stock, as a reader picks from Browse
}

func (r readmeAnswers) get(op string, path ...any) any { return dig(r.data[op], path...) }

// mailedToken is the token of the verification mail to the address.
func (r readmeAnswers) mailedToken(to string) string {
	m := r.mails.Wait(r.t, to, "Confirm your email", 30*time.Second)
	found := regexp.MustCompile(`token=([A-Z2-7]+)`).FindStringSubmatch(m.Body)
	if found == nil {
		r.t.Fatalf("verification mail without a token: %q", m.Body)
	}
	return found[1]
}

// dig walks decoded JSON by object keys and array indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

var graphqlBlock = regexp.MustCompile("(?s)```graphql\n(.*?)```")

// Every GraphQL example of the README is a named operation that runs as written, with the
// variables its comments say where to take from, against a seeded server.
func TestREADMEExamplesRun(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t)
	env["RATE_LIMIT_PER_SECOND"] = "0"
	mails := mailtest.Start(t)
	env["SMTP_ADDR"] = mails.Addr
	runCommand(t, env, "migrate")
	runCommand(t, env, "seed", "--products", "40", "--seed", "2")
	token := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))
	base, _ := startServer(t, env)
	r := readmeAnswers{t: t, mails: mails, data: map[string]map[string]any{}, sku: fmt.Sprintf("README-%d", rand.Uint32())}
	stock, _ := gql(t, base, "", `{ products(first: 50) { edges { node { id availability { available } } } } }`, nil)
	for _, e := range dig(stock, "products", "edges").([]any) {
		if n, _ := dig(e, "node", "availability", "available").(float64); n >= 2 && r.stocked == "" {
			r.stocked = dig(e, "node", "id").(string)
		}
	}

	ran := 0
	for i, m := range graphqlBlock.FindAllStringSubmatch(string(readme), -1) {
		doc, perr := parser.ParseQuery(&ast.Source{Input: m[1]})
		if perr != nil {
			t.Errorf("README block %d does not parse: %v", i+1, perr)
			continue
		}
		for _, op := range doc.Operations {
			vars, known := readmeVariables[op.Name]
			if op.Name == "" || !known {
				t.Errorf("README block %d: operation %q is anonymous or not run by this test", i+1, op.Name)
				continue
			}
			var args map[string]any
			if vars != nil {
				args = vars(r)
			}
			bearer := ""
			if readmeMerchandiser[op.Name] {
				bearer = token
			}
			if readmeCustomer[op.Name] {
				bearer, _ = r.get("SignIn", "customerSignIn", "accessToken").(string)
			}
			body, _ := json.Marshal(map[string]any{"query": m[1], "operationName": op.Name, "variables": args})
			_, raw := post(t, base+"/graphql", bearer, string(body))
			var resp struct {
				Data   map[string]any
				Errors []struct{ Message string }
			}
			if err := json.Unmarshal([]byte(raw), &resp); err != nil {
				t.Fatalf("%s: %q", op.Name, raw)
			}
			if op.Operation == ast.Subscription {
				// Valid as written: refused only for want of a stream, after validation.
				if len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].Message, "subscriptions need a stream") {
					t.Errorf("%s: got %s; want it valid", op.Name, raw)
				}
				continue
			}
			if len(resp.Errors) > 0 {
				t.Errorf("%s with %v: %s", op.Name, args, raw)
			}
			r.data[op.Name] = resp.Data
			ran++
		}
	}
	// The walk-through ends with the guest's order in the customer's myOrders.
	if got, want := r.get("Me", "myOrders", "edges", 0, "node", "number"), r.get("Checkout", "checkout", "number"); got == nil || got != want {
		t.Errorf("myOrders after the walk-through: got order %v; want the Checkout's %v", got, want)
	}
	if ran < 10 {
		t.Errorf("ran %d README operations; want every one", ran)
	}
}
