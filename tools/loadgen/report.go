package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// summary is the report, in the units people read: req/s and milliseconds, 2 decimals.
type summary struct {
	Name     string  `json:"name"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Limited  int     `json:"limited"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_ms"`
	P95      float64 `json:"p95_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

func summarize(name string, res result) summary {
	secs := res.elapsed.Seconds()
	var rps float64
	if secs > 0 {
		rps = float64(res.requests) / secs
	}
	return summary{
		Name:     name,
		Requests: res.requests,
		Errors:   res.errors,
		Limited:  res.limited,
		Seconds:  round2(secs),
		RPS:      round2(rps),
		P50:      ms(percentile(res.lat, 50)),
		P95:      ms(percentile(res.lat, 95)),
		P99:      ms(percentile(res.lat, 99)),
		Max:      ms(percentile(res.lat, 100)),
	}
}

func report(w io.Writer, cfg config, res result) error {
	s := summarize(cfg.name, res)
	if cfg.jsonOut {
		return json.NewEncoder(w).Encode(s)
	}
	_, err := fmt.Fprintf(w, "%s: %d requests, %d errors, %d rate limited, %.2f req/s, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		s.Name, s.Requests, s.Errors, s.Limited, s.RPS, s.P50, s.P95, s.P99, s.Max)
	return err
}

func ms(d time.Duration) float64 { return round2(float64(d) / float64(time.Millisecond)) }

func round2(x float64) float64 { return math.Round(x*100) / 100 }
