// Command loadgen measures a GraphQL endpoint over loopback: -c workers POST one document in
// a loop for -d after an unmeasured -warmup, and it reports throughput and latency
// percentiles. It exits with status 1 if any measured request failed, so a benchmark built
// on it cannot silently report the speed of error responses.
//
// With -mix it runs the storefront's mixed workload instead (see mix.go): open loop, at each
// rate of -rates in turn, with every class's percentiles next to the seed's p95.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is everything the flags decide.
type config struct {
	url      string
	body     []byte
	header   http.Header
	workers  int
	duration time.Duration
	warmup   time.Duration
	name     string
	jsonOut  bool
	// The mixed workload: its rates (operations per second) and the products it samples.
	mix    bool
	rates  []float64
	sample int
	// refine is how many rates the mix tries between the last that held and the first that
	// did not, halving the gap each time.
	refine int
	// followRetryAfter makes workers wait out RATE_LIMITED answers, as a well-behaved
	// client would, instead of counting them as failures.
	followRetryAfter bool
	// expectErrors counts error responses as requests, not failures: for clients whose
	// requests the server is meant to refuse.
	expectErrors bool
	// pace, when positive, is the least time between the starts of a worker's requests:
	// a client that browses rather than hammers.
	pace time.Duration
}

// headerFlag collects repeated -header "Name: value" flags.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string { return "" }

func (f *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", s)
	}
	f.h.Add(name, strings.TrimSpace(value))
	return nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if cfg.mix {
		if err := runMix(cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		return
	}
	res := run(cfg)
	if err := report(os.Stdout, cfg, res); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if err := res.failure(); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %s: %v\n", cfg.name, err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	var query, queryFile, variables, variablesFile string
	headers := headerFlag{h: http.Header{}}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8081/graphql", "GraphQL endpoint")
	fs.StringVar(&query, "query", "", "GraphQL document (this or -query-file is required)")
	fs.StringVar(&queryFile, "query-file", "", "file holding the GraphQL document (or any text to send as one)")
	fs.StringVar(&variables, "variables", "", "variables as a JSON object")
	fs.StringVar(&variablesFile, "variables-file", "", "file holding the variables (for those too long for a command line)")
	fs.Var(&headers, "header", `request header "Name: value" (repeatable)`)
	fs.IntVar(&cfg.workers, "c", 16, "concurrent workers")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured warm-up before -d")
	fs.StringVar(&cfg.name, "name", "", "scenario label for the report")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print one JSON object instead of a text line")
	fs.BoolVar(&cfg.mix, "mix", false, "run the storefront's open-loop mixed workload instead of -query")
	rates := fs.String("rates", "100,200,400,800", "with -mix: operations per second of each step, in order")
	fs.IntVar(&cfg.sample, "sample", 5000, "with -mix: products sampled from the catalog")
	fs.IntVar(&cfg.refine, "refine", 2, "with -mix: rates tried by halving the gap between the last rate that held and the first that did not")
	fs.BoolVar(&cfg.followRetryAfter, "follow-retry-after", false, "wait out RATE_LIMITED answers (Retry-After) instead of failing on them")
	fs.DurationVar(&cfg.pace, "pace", 0, "least time between the starts of one worker's requests (0: none)")
	fs.BoolVar(&cfg.expectErrors, "expect-errors", false, "count error answers as requests, not failures")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := errors.Join(readInto(queryFile, &query), readInto(variablesFile, &variables)); err != nil {
		return cfg, err
	}
	if cfg.mix {
		if query == "" {
			query = "{ __typename }" // unused: the mix has its own documents
		}
		var err error
		if cfg.rates, err = parseRates(*rates); err != nil {
			return cfg, err
		}
	}
	if err := validate(cfg, query, fs.NArg()); err != nil {
		return cfg, err
	}
	body, err := requestBody(query, variables)
	if err != nil {
		return cfg, err
	}
	cfg.body = body
	cfg.header = withDefaults(headers.h)
	if cfg.name == "" {
		cfg.name = "graphql"
	}
	return cfg, nil
}

// readInto sets *value to the text of file, unless file is "".
func readInto(file string, value *string) error {
	if file == "" {
		return nil
	}
	text, err := os.ReadFile(file)
	*value = string(text)
	return err
}

func validate(cfg config, query string, extraArgs int) error {
	switch {
	case extraArgs > 0:
		return errors.New("unexpected arguments after the flags")
	case strings.TrimSpace(query) == "":
		return errors.New("-query is required")
	case cfg.workers < 1:
		return errors.New("-c must be at least 1")
	case cfg.duration <= 0:
		return errors.New("-d must be positive")
	case cfg.warmup < 0:
		return errors.New("-warmup must not be negative")
	}
	return nil
}

// requestBody encodes the POST body once: every request sends the same bytes.
func requestBody(query, variables string) ([]byte, error) {
	var vars json.RawMessage
	if strings.TrimSpace(variables) != "" {
		// Decoding into a map rejects arrays and scalars, which GraphQL servers refuse.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(variables), &obj); err != nil {
			return nil, fmt.Errorf("-variables must be a JSON object: %w", err)
		}
		vars = json.RawMessage(variables)
	}
	return json.Marshal(struct {
		Query     string          `json:"query"`
		Variables json.RawMessage `json:"variables,omitempty"`
	}{query, vars})
}

// withDefaults adds the JSON content type unless the caller chose another one.
func withDefaults(h http.Header) http.Header {
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if h.Get("Accept") == "" {
		h.Set("Accept", "application/json")
	}
	return h
}

// parseRates reads a comma-separated list of positive rates.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive number", f)
		}
		out = append(out, r)
	}
	return out, nil
}
