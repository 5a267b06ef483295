package breaker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Log is a log that is itself rate limited: when a dependency is down every request fails
// the same way, and one line per interval says so as well as thousands would.
type Log struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// LogEvery is how often a repeated failure is logged.
const LogEvery = time.Minute

// NewLog returns a Log writing to log (slog.Default when nil) at most once a LogEvery.
func NewLog(log *slog.Logger) *Log {
	if log == nil {
		log = slog.Default()
	}
	return &Log{log: log, every: LogEvery}
}

// Warn logs msg and err unless it logged less than an interval ago; then it counts them,
// and the next line reports how many were left out.
func (l *Log) Warn(ctx context.Context, msg string, err error) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.WarnContext(ctx, msg, "err", err, "suppressed", suppressed)
}
