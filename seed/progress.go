package seed

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// meterBatch is how many rows a meter counts before it updates the bar and checks the context:
// doing either per row would cost more than generating the row.
const meterBatch = 1024

// progress reports the phases of a load: a bar per phase on a terminal, a line per phase on
// any other writer, nothing without one.
type progress struct {
	w   io.Writer
	tty bool
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(interface{ Fd() uintptr })
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

// meter counts the rows of one phase as a copy source yields them.
type meter struct {
	ctx     context.Context
	p       *progress
	name    string
	bar     *progressbar.ProgressBar
	pending int
	began   time.Time
}

// phase starts reporting a phase of total rows.
func (p *progress) phase(ctx context.Context, name string, total int) *meter {
	m := &meter{ctx: ctx, p: p, name: name, began: time.Now()}
	if p.tty {
		m.bar = progressbar.NewOptions64(int64(total),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(fmt.Sprintf("%-10s", name)),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		)
	}
	return m
}

// tick counts a row. It fails once the context is done, so that a cancelled load stops
// generating rows rather than filling a pipe that nobody reads.
func (m *meter) tick() error {
	m.pending++
	if m.pending < meterBatch {
		return nil
	}
	m.flush()
	return m.ctx.Err()
}

func (m *meter) flush() {
	if m.bar != nil {
		_ = m.bar.Add(m.pending) // a bar that cannot draw is no reason to fail the load
	}
	m.pending = 0
}

// done ends the phase, which wrote rows rows.
func (m *meter) done(rows int64) {
	switch {
	case m.bar != nil:
		m.flush()
		_ = m.bar.Finish()
	case m.p.w != nil:
		fmt.Fprintf(m.p.w, "seed: %-10s %8d rows in %s\n", m.name, rows, time.Since(m.began).Round(time.Millisecond))
	}
}
