package searchtest

import (
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchClients is how many clients search at once: SEARCH_BENCH_CLIENTS, default 16.
func BenchClients() int {
	if v, err := strconv.Atoi(os.Getenv("SEARCH_BENCH_CLIENTS")); err == nil && v > 0 {
		return v
	}
	return 16
}

// RunClients runs op b.N times in all from clients goroutines and returns the latencies.
func RunClients(b *testing.B, clients int, op func() error) []time.Duration {
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
		next atomic.Int64
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				began := time.Now()
				if err := op(); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(began)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	return lat
}

// ReportPercentiles reports the median, 95th and 99th percentiles of lat in milliseconds.
func ReportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
