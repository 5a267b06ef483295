// Package elastic is the Elasticsearch (or OpenSearch) engine: it answers searches and
// suggestions from an index behind an alias, and administers that index (create, alias
// swaps, bulk writes, version scans) for the indexer, which decides what to write.
package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/homegoods/storefront/search"
)

// Config says where the Elasticsearch (or OpenSearch) index lives and how to search it.
type Config struct {
	// URL of the cluster, such as http://127.0.0.1:9200, or the URLs of several of its nodes
	// separated by commas: a request a node cannot answer goes to the next.
	URL string
	// Replicas is the number of replicas of an index's shard, set when an index is created
	// (or rebuilt): 0 on a single node, 1 or more on a cluster so that every document lives
	// on several nodes and a node can go without a search failing.
	Replicas int
	// APIKey, when set, authenticates every request (the base64 API key); basic
	// authentication goes in the URLs' user information instead.
	APIKey string
	// Index is the alias that searches read and the indexer writes, such as "products";
	// the indices behind it are named after it ("products_20261126t120000.123456").
	Index string
	// Facets are the facets searches count; Reindex maps the configured attribute keys.
	Facets search.Config
	// HTTPClient's transport carries the requests (default http.DefaultTransport); its
	// timeout, when set, bounds each request.
	HTTPClient *http.Client
	// Timeout bounds each request when the context has no earlier deadline (default 10s).
	Timeout time.Duration
}

// Engine answers searches from an Elasticsearch 8 or OpenSearch 2 index through
// go-elasticsearch. The index holds every product (see Document); searches find the
// ACTIVE ones. See query.go for how a search becomes a request.
type Engine struct {
	es       *elasticsearch.Client
	alias    string
	cfg      search.Config
	timeout  time.Duration
	replicas int
	words    search.WordCache[wordAnswer]
}

// New returns the engine of cfg. It makes no request: an unreachable cluster shows
// in the first search.
func New(cfg Config) (*Engine, error) {
	var addrs []string
	for _, u := range strings.Split(cfg.URL, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			addrs = append(addrs, u)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("elasticsearch: no URL")
	}
	if cfg.Replicas < 0 {
		return nil, fmt.Errorf("elasticsearch: %d replicas", cfg.Replicas)
	}
	if !validIndexName(cfg.Index) {
		return nil, fmt.Errorf("elasticsearch: %q is not a valid index name", cfg.Index)
	}
	base := http.DefaultTransport
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		base = cfg.HTTPClient.Transport
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if cfg.HTTPClient != nil && cfg.HTTPClient.Timeout > 0 {
		timeout = cfg.HTTPClient.Timeout
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses:  addrs,
		APIKey:     cfg.APIKey,
		Transport:  NewProductHeaderTransport(base),
		MaxRetries: 2,
		// Retry on overload too: a bulk answered 429 is retried rather than failed.
		RetryOnStatus: []int{502, 503, 504, 429},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	return &Engine{es: es, alias: cfg.Index, cfg: cfg.Facets, timeout: timeout, replicas: cfg.Replicas}, nil
}

// Name implements search.Engine.
func (e *Engine) Name() string { return "elasticsearch" }

// Alias returns the alias the engine reads.
func (e *Engine) Alias() string { return e.alias }

// validIndexName accepts the lowercase names Elasticsearch allows, without the characters
// that would need escaping in a path.
func validIndexName(name string) bool {
	if name == "" || len(name) > 200 || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "-") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// esError is an error answer of the cluster.
type esError struct {
	Status int
	Type   string // error.type, such as "index_not_found_exception"
	Reason string
}

func (e *esError) Error() string {
	return fmt.Sprintf("elasticsearch: %d %s: %s", e.Status, e.Type, e.Reason)
}

// isStatus reports whether err is an answer of the cluster with this HTTP status.
func isStatus(err error, status int) bool {
	var ee *esError
	return errors.As(err, &ee) && ee.Status == status
}

// Do sends one request with a JSON body (nil for none) and decodes a 2xx answer into out
// (nil to discard it), within the configured timeout. Other answers become *esError.
func (e *Engine) Do(ctx context.Context, method, path string, body, out any) error {
	return e.doWithin(ctx, e.timeout, method, path, body, out)
}

// bulkTimeoutFactor stretches the timeout of bulk writes: they carry a batch of the
// indexer's background work, not a shopper's request, and a busy engine (merging, or short
// of CPU) takes longer than a search's timeout over them; a reindex must not fail for it.
const bulkTimeoutFactor = 6

// doWithin is Do within timeout.
func (e *Engine) doWithin(ctx context.Context, timeout time.Duration, method, path string, body, out any) error {
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("elasticsearch: encode request: %w", err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	if rd != nil {
		ct := "application/json"
		if strings.HasSuffix(path, "_bulk") || strings.Contains(path, "_bulk?") {
			ct = "application/x-ndjson"
		}
		req.Header.Set("Content-Type", ct)
	}
	res, err := e.es.Perform(req)
	if err != nil {
		return fmt.Errorf("elasticsearch %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return decodeError(res)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("elasticsearch %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

func decodeError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	ee := &esError{Status: res.StatusCode}
	if json.Unmarshal(b, &body) == nil && len(body.Error) > 0 {
		var detail struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(body.Error, &detail) == nil {
			ee.Type, ee.Reason = detail.Type, detail.Reason
		} else {
			ee.Reason = string(body.Error)
		}
	} else {
		ee.Reason = strings.TrimSpace(string(b))
	}
	return ee
}

// ProductHeaderTransport lets go-elasticsearch talk to OpenSearch. The client refuses
// answers without the header "X-Elastic-Product: Elasticsearch", which Elasticsearch 8
// sends and OpenSearch does not. When an answer lacks it, the transport asks the server
// (GET /) once what it is, and supplies the header on the answers of a server that says it
// is OpenSearch. Answers of any other server pass unchanged, so the client still refuses
// what is neither.
type ProductHeaderTransport struct {
	base http.RoundTripper

	mu         sync.Mutex
	opensearch map[string]bool // by scheme://host, once known
}

// NewProductHeaderTransport wraps base (http.DefaultTransport when nil).
func NewProductHeaderTransport(base http.RoundTripper) *ProductHeaderTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &ProductHeaderTransport{base: base, opensearch: map[string]bool{}}
}

// RoundTrip implements http.RoundTripper.
func (t *ProductHeaderTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil || res.Header.Get("X-Elastic-Product") != "" {
		return res, err
	}
	if t.isOpenSearch(req) {
		res.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return res, nil
}

// isOpenSearch tells whether the server of req says it is OpenSearch; a failed probe is
// retried on the next answer.
func (t *ProductHeaderTransport) isOpenSearch(req *http.Request) bool {
	server := req.URL.Scheme + "://" + req.URL.Host
	t.mu.Lock()
	known, ok := t.opensearch[server]
	t.mu.Unlock()
	if ok {
		return known
	}
	is, err := t.probe(req.Context(), req.URL.Scheme, req.URL.Host, req.Header.Get("Authorization"))
	if err != nil {
		return false
	}
	t.mu.Lock()
	t.opensearch[server] = is
	t.mu.Unlock()
	return is
}

func (t *ProductHeaderTransport) probe(ctx context.Context, scheme, host, auth string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/", nil)
	if err != nil {
		return false, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET / answered %d", res.StatusCode)
	}
	var root struct {
		Version struct {
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&root); err != nil {
		return false, err
	}
	return root.Version.Distribution == "opensearch", nil
}
