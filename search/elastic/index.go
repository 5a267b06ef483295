package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/homegoods/storefront/search"
)

// Index layout. The alias (Config.Index) names one concrete index at a time; a
// rebuild fills a new index, reachable meanwhile through the "next" alias so that the
// indexer writes to both, then swaps the alias in one _aliases call.
const (
	// refreshInterval bounds how long an indexed change takes to become searchable: half
	// of the 1 s sync target, leaving the rest to the relay.
	refreshInterval = "500ms"
	// MaxBulkDocs and maxBulkBytes bound one bulk request, so that a large change is many
	// small requests that leave the cluster room for searches and other writes.
	MaxBulkDocs  = 1000
	maxBulkBytes = 5 << 20
	// suggestPrefixes is the longest prefix indexed for suggestions.
	suggestPrefixes = 12
)

// NextAlias names the index being rebuilt for alias while a rebuild runs.
func NextAlias(alias string) string { return alias + "_next" }

// NewIndexName names a new concrete index of alias, ordered by creation time.
func NewIndexName(alias string) string {
	return alias + "_" + strings.ToLower(time.Now().UTC().Format("20060102t150405.000000"))
}

// englishStopWords are PostgreSQL's English stop words (tsearch_data/english.stop), so that
// both engines drop the same words from queries and documents.
var englishStopWords = strings.Fields(`i me my myself we our ours ourselves you your yours
yourself yourselves he him his himself she her hers herself it its itself they them their
theirs themselves what which who whom this that these those am is are was were be been being
have has had having do does did doing a an the and but if or because as until while of at by
for with about against between into through during before after above below to from up down
in out on off over under again further then once here there when where why how all any both
each few more most other some such no nor not only own same so than too very s t can will
just don should now`)

// indexBody is the settings and mappings of a new index: one shard (facet counts are exact)
// with replicas copies of it on other nodes; English text analysed like PostgreSQL's 'english'
// configuration (its stop words, the Porter2 stemmer), synonyms applied at search time
// before stemming; edge n-grams of the name from each word for suggestions; keywords and
// numbers for filters, facets and sorts. refresh is the refresh interval: "-1" while a
// rebuild loads the index.
func indexBody(cfg search.Config, synonyms []string, refresh string, replicas int) map[string]any {
	settings := map[string]any{
		"number_of_shards":   1,
		"number_of_replicas": replicas,
		"refresh_interval":   refresh,
		// Products are deleted softly (a document that is not ACTIVE keeps its version),
		// so delete tombstones protect nothing; dropping them at the next refresh lets the
		// reconciler write back a document deleted behind the indexer's back.
		"gc_deletes": "0s",
		"analysis":   analysisSettings(synonyms),
	}
	if refresh == "-1" {
		// A bulk load: PostgreSQL keeps the data, a crash only means loading again.
		settings["translog"] = map[string]any{"durability": "async"}
	}
	return map[string]any{"settings": settings, "mappings": mappings(cfg)}
}

func analysisSettings(synonyms []string) map[string]any {
	return map[string]any{
		"filter": map[string]any{
			"sf_possessive": map[string]any{"type": "stemmer", "language": "possessive_english"},
			"sf_stop":       map[string]any{"type": "stop", "stopwords": englishStopWords},
			"sf_stem":       map[string]any{"type": "stemmer", "language": "porter2"},
			"sf_synonyms":   synonymFilter(synonyms),
		},
		"analyzer": map[string]any{
			"sf_text": map[string]any{"tokenizer": "standard",
				"filter": []string{"sf_possessive", "lowercase", "sf_stop", "sf_stem"}},
			// Synonyms see lowercase words before stop words and stemming go: a rule
			// matches the words a shopper typed, as in the PostgreSQL engine.
			"sf_text_search": map[string]any{"tokenizer": "standard",
				"filter": []string{"sf_possessive", "lowercase", "sf_synonyms", "sf_stop", "sf_stem"}},
			"sf_lowercase": map[string]any{"tokenizer": "keyword", "filter": []string{"lowercase"}},
		},
	}
}

// synonymFilter holds the rules in the Solr format (see SynonymLines). lenient skips a rule
// the analyzer cannot read rather than failing the whole index.
func synonymFilter(lines []string) map[string]any {
	if lines == nil {
		lines = []string{}
	}
	return map[string]any{"type": "synonym_graph", "synonyms": lines, "lenient": true}
}

func mappings(cfg search.Config) map[string]any {
	text := func() map[string]any {
		return map[string]any{"type": "text", "analyzer": "sf_text", "search_analyzer": "sf_text_search"}
	}
	keyword := map[string]any{"type": "keyword"}
	// Facet fields build their global ordinals at refresh, not in the first search after.
	facet := map[string]any{"type": "keyword", "eager_global_ordinals": true}
	long := map[string]any{"type": "long"}
	double := map[string]any{"type": "double"}
	name := text()
	name["fields"] = map[string]any{"exact": map[string]any{"type": "keyword", "ignore_above": 1024}}
	// Offsets in the postings let the highlighter mark the words of the page's hits
	// without analysing their text again.
	name["index_options"] = "offsets"
	description := text()
	description["index_options"] = "offsets"
	attrs := map[string]any{}
	for _, k := range cfg.AttributeKeys {
		attrs[k.Key] = facet
	}
	return map[string]any{
		// Fields not listed stay in _source but are not indexed: a document never changes
		// the mapping.
		"dynamic": false,
		"properties": map[string]any{
			"product_id":  keyword,
			"name":        name,
			"description": description,
			"brand":       text(),
			"category":    text(),
			// The name from each word on, lowercase and whole, with its prefixes of up to
			// suggestPrefixes characters indexed as terms (edge n-grams): a suggestion is
			// one term lookup; a longer prefix is a prefix query on the whole strings.
			"suggest": map[string]any{"type": "text", "analyzer": "sf_lowercase",
				"index_prefixes": map[string]any{"min_chars": 1, "max_chars": suggestPrefixes},
				"index_options":  "docs", "norms": false},
			"brand_id": keyword, "brand_facet": facet,
			"category_id": keyword, "category_path": keyword, "category_facet": facet,
			"price_cents": long, "cost_cents": long, "margin": double, "rating": double,
			"popularity": long, "created_us": long, "status": keyword, "version": long,
			"attrs":     map[string]any{"type": "object", "dynamic": false, "properties": attrs},
			"attr_keys": facet,
		},
	}
}

// CreateIndex creates index with the current synonyms; refresh is its refresh interval
// ("-1" while bulk loading: then without replicas, which finishing the load adds, so that
// the load is written once).
func (e *Engine) CreateIndex(ctx context.Context, index string, synonyms []string, refresh string) error {
	replicas := e.replicas
	if refresh == "-1" {
		replicas = 0
	}
	if err := e.Do(ctx, "PUT", "/"+index, indexBody(e.cfg, synonyms, refresh, replicas), nil); err != nil {
		return fmt.Errorf("create index %s: %w", index, err)
	}
	return e.waitHealthy(ctx, index)
}

// waitHealthy waits until index's primary shard is active (yellow or green).
func (e *Engine) waitHealthy(ctx context.Context, index string) error {
	path := "/_cluster/health/" + index + "?wait_for_status=yellow&timeout=30s"
	var h struct {
		Status   string `json:"status"`
		TimedOut bool   `json:"timed_out"`
	}
	if err := e.Do(ctx, "GET", path, nil, &h); err != nil {
		return fmt.Errorf("wait for index %s: %w", index, err)
	}
	if h.TimedOut || h.Status == "red" {
		return fmt.Errorf("index %s is %s after 30s", index, h.Status)
	}
	return nil
}

// AliasIndices returns the indices alias names, sorted; none when it does not exist.
func (e *Engine) AliasIndices(ctx context.Context, alias string) ([]string, error) {
	var got map[string]json.RawMessage
	err := e.Do(ctx, "GET", "/_alias/"+alias, nil, &got)
	if isStatus(err, 404) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve alias %s: %w", alias, err)
	}
	out := make([]string, 0, len(got))
	for index := range got {
		out = append(out, index)
	}
	sort.Strings(out)
	return out, nil
}

// AliasAction is one action of an _aliases call.
type AliasAction map[string]map[string]string

func AddAlias(index, alias string) AliasAction {
	return AliasAction{"add": {"index": index, "alias": alias}}
}

func RemoveAlias(index, alias string) AliasAction {
	return AliasAction{"remove": {"index": index, "alias": alias}}
}

// UpdateAliases applies the actions atomically: a search sees the aliases before or after,
// never in between.
func (e *Engine) UpdateAliases(ctx context.Context, actions ...AliasAction) error {
	if err := e.Do(ctx, "POST", "/_aliases", map[string]any{"actions": actions}, nil); err != nil {
		return fmt.Errorf("update aliases: %w", err)
	}
	return nil
}

func (e *Engine) DeleteIndex(ctx context.Context, index string) error {
	err := e.Do(ctx, "DELETE", "/"+index, nil, nil)
	if err != nil && !isStatus(err, 404) {
		return fmt.Errorf("delete index %s: %w", index, err)
	}
	return nil
}

func (e *Engine) Refresh(ctx context.Context, target string) error {
	if err := e.Do(ctx, "POST", "/"+target+"/_refresh", nil, nil); err != nil {
		return fmt.Errorf("refresh %s: %w", target, err)
	}
	return nil
}

func (e *Engine) putSettings(ctx context.Context, target string, settings map[string]any) error {
	if err := e.Do(ctx, "PUT", "/"+target+"/_settings", map[string]any{"index": settings}, nil); err != nil {
		return fmt.Errorf("update settings of %s: %w", target, err)
	}
	return nil
}

// IndexSynonyms returns the synonym rules index was created with.
func (e *Engine) IndexSynonyms(ctx context.Context, index string) ([]string, error) {
	var got map[string]struct {
		Settings map[string]json.RawMessage `json:"settings"`
	}
	path := "/" + index + "/_settings/index.analysis.filter.sf_synonyms.synonyms?flat_settings=true"
	if err := e.Do(ctx, "GET", path, nil, &got); err != nil {
		return nil, fmt.Errorf("read synonyms of %s: %w", index, err)
	}
	var out []string
	for _, s := range got[index].Settings {
		var one []string
		if json.Unmarshal(s, &one) == nil {
			out = append(out, one...)
		}
	}
	return out, nil
}

// BulkItem is one write of a bulk request.
type BulkItem struct {
	Doc *Document
	// Delete removes the document instead (used only to repair an index that is ahead
	// of PostgreSQL); its id is Doc.ProductID.
	Delete bool
}

// BulkStats counts what one bulk call did.
type BulkStats struct {
	Indexed   int // written
	Conflicts int // refused: the index already had this version or a newer one
	Missing   int // deletes of documents that were not there
	// Conflicted are the ids of the refused writes.
	Conflicted []string
}

// Add counts o in s.
func (s *BulkStats) Add(o BulkStats) {
	s.Indexed += o.Indexed
	s.Conflicts += o.Conflicts
	s.Missing += o.Missing
	s.Conflicted = append(s.Conflicted, o.Conflicted...)
}

// Bulk writes items to target in requests of at most MaxBulkDocs documents and
// maxBulkBytes. Each document carries its row version as an external version: versionType
// "external" refuses a version the index already has (a replay), "external_gte" rewrites
// it (documents that changed without a new product version: a renamed brand). A refused
// write counts as done, since the index has this data or newer. Writes to an alias require
// the alias to exist, so that a write never creates an index.
func (e *Engine) Bulk(ctx context.Context, target string, items []BulkItem, versionType string, requireAlias bool) (BulkStats, error) {
	var total BulkStats
	for len(items) > 0 {
		body, n, err := bulkBody(items, versionType)
		if err != nil {
			return total, err
		}
		st, err := e.sendBulk(ctx, target, body, requireAlias)
		total.Add(st)
		if err != nil {
			return total, err
		}
		items = items[n:]
	}
	return total, nil
}

// bulkBody encodes the first items that fit in one request, and says how many.
func bulkBody(items []BulkItem, versionType string) ([]byte, int, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	n := 0
	for _, it := range items {
		if n == MaxBulkDocs || (n > 0 && buf.Len() >= maxBulkBytes) {
			break
		}
		meta := map[string]any{"_id": it.Doc.ProductID}
		if it.Delete {
			if err := enc.Encode(map[string]any{"delete": meta}); err != nil {
				return nil, 0, fmt.Errorf("encode bulk: %w", err)
			}
			n++
			continue
		}
		meta["version"], meta["version_type"] = it.Doc.Version, versionType
		if err := enc.Encode(map[string]any{"index": meta}); err != nil {
			return nil, 0, fmt.Errorf("encode bulk: %w", err)
		}
		if err := enc.Encode(it.Doc); err != nil {
			return nil, 0, fmt.Errorf("encode bulk: %w", err)
		}
		n++
	}
	return buf.Bytes(), n, nil
}

// bulkAnswer is the answer of a bulk request.
type bulkAnswer struct {
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		ID     string `json:"_id"`
		Status int    `json:"status"`
		Error  *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	} `json:"items"`
}

func (e *Engine) sendBulk(ctx context.Context, target string, body []byte, requireAlias bool) (BulkStats, error) {
	path := "/" + target + "/_bulk"
	if requireAlias {
		path += "?" + url.Values{"require_alias": {"true"}}.Encode()
	}
	var ans bulkAnswer
	if err := e.doWithin(ctx, bulkTimeoutFactor*e.timeout, "POST", path, body, &ans); err != nil {
		return BulkStats{}, fmt.Errorf("bulk to %s: %w", target, err)
	}
	var st BulkStats
	var failed []string
	missing := 0 // failures because the target does not exist
	for _, item := range ans.Items {
		for op, r := range item {
			switch {
			case r.Status == 409:
				st.Conflicts++
				st.Conflicted = append(st.Conflicted, r.ID)
			case op == "delete" && r.Status == 404:
				st.Missing++
			case r.Status < 300:
				st.Indexed++
			case r.Error != nil:
				failed = append(failed, fmt.Sprintf("%s %d %s: %s", r.ID, r.Status, r.Error.Type, r.Error.Reason))
				if r.Error.Type == "index_not_found_exception" {
					missing++
				}
			default:
				failed = append(failed, fmt.Sprintf("%s %d", r.ID, r.Status))
			}
		}
	}
	if len(failed) > 0 && missing == len(failed) {
		// The alias went away (a rebuild finished or was abandoned): say so plainly.
		return st, &esError{Status: 404, Type: "index_not_found_exception", Reason: "bulk to " + target + ": " + failed[0]}
	}
	if len(failed) > 0 {
		return st, fmt.Errorf("bulk to %s: %d of %d writes failed, first: %s", target, len(failed), len(ans.Items), failed[0])
	}
	return st, nil
}

// IsMissingAlias tells whether a bulk failed because its alias does not exist.
func IsMissingAlias(err error) bool {
	var ee *esError
	return errors.As(err, &ee) && (ee.Status == 404 || ee.Type == "index_not_found_exception")
}

// GoLive turns a loaded index into a live one: near-real-time refreshes, a durable
// translog and its replicas again, and a refresh so that everything loaded is searchable.
func (e *Engine) GoLive(ctx context.Context, index string) error {
	err := e.putSettings(ctx, index, map[string]any{
		"refresh_interval":   refreshInterval,
		"translog":           map[string]any{"durability": "request"},
		"number_of_replicas": e.replicas,
	})
	if err != nil {
		return err
	}
	// Unlike a refresh of a few changes, this one writes the segments of every document
	// loaded: tens of seconds for 100,000 products on a busy node, past the bound of one
	// request, and a rebuild that gives up here starts over and never ends.
	if err := e.doWithin(ctx, loadRefreshTimeout, "POST", "/"+index+"/_refresh", nil, nil); err != nil {
		return fmt.Errorf("refresh %s: %w", index, err)
	}
	return nil
}

// loadRefreshTimeout bounds the refresh that makes a fully loaded index searchable.
const loadRefreshTimeout = 5 * time.Minute
