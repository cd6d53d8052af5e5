// Package precedence lets the API requests of one process go before its
// background tasks, within a budget.
//
// In `iacc serve` the API and the worker share the machine's cores. An order
// costs about 1 ms of CPU to accept and several more to render, mail and
// deliver, so a worker left to run during a burst of requests takes most of
// the CPU from the requests. The effects are asynchronous by contract; the
// people and systems waiting on the API are not. A Gate therefore holds a
// task back, before it starts, while the API is busy (Config.Busy requests
// in flight), and lets it go as soon as the API is not.
//
// The budget bounds the holding: once tasks have been held for
// Config.Budget in all, the gate stops holding them and the worker takes its
// share of the CPU again (which slows the API down: that is the
// back-pressure), until the queues are empty again (Config.Backlog reports
// 0), which renews the budget. A burst therefore delays effects by at most
// the budget; sustained overload is shared as if there were no gate, so the
// queues cannot grow without bound because of it. A task is also never held
// for more than half of the time left before its deadline.
package precedence

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Gate.
type Config struct {
	// Budget is how long tasks may be held back in all before the queues
	// have been found empty again. 0 turns the gate off.
	Budget time.Duration
	// Busy is the number of API requests in flight from which the API counts
	// as busy (default: GOMAXPROCS).
	Busy int
	// Backlog reports how many tasks wait in the queues. The budget is
	// renewed when it reports 0 (Run asks every checkEvery while part of the
	// budget is used). Nil: the budget is renewed on every check.
	Backlog func(context.Context) (int64, error)
	Logger  *slog.Logger
}

// checkEvery is how often Run asks Config.Backlog while part of the budget
// is used.
const checkEvery = 500 * time.Millisecond

// Gate is shared by the API (Enter, Leave) and the worker (Wait) of one
// process. A nil *Gate never holds anything.
type Gate struct {
	cfg      Config
	inflight atomic.Int64 // API requests in flight
	waiting  atomic.Int64 // tasks held now

	mu        sync.Mutex
	wake      chan struct{} // closed to let the held tasks go
	heldSince time.Time     // start of the current holding period (waiting > 0)
	used      time.Duration // budget used before heldSince
	total     time.Duration // time held in all (metrics), before heldSince
	spent     bool          // the budget is used up: nothing is held until renewed
	closed    bool

	// onHold, when set, is called when a task starts being held (tests).
	onHold func()
}

// New returns a gate, or nil when cfg.Budget is 0.
func New(cfg Config) *Gate {
	if cfg.Budget <= 0 {
		return nil
	}
	if cfg.Busy <= 0 {
		cfg.Busy = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Gate{cfg: cfg, wake: make(chan struct{})}
}

// Enter counts an API request in flight. Every Enter needs its Leave.
func (g *Gate) Enter() {
	if g != nil {
		g.inflight.Add(1)
	}
}

// Leave ends an API request. When the API stops being busy, the held tasks
// go.
func (g *Gate) Leave() {
	if g == nil {
		return
	}
	if g.inflight.Add(-1) == int64(g.cfg.Busy)-1 && g.waiting.Load() > 0 {
		g.mu.Lock()
		g.releaseLocked()
		g.mu.Unlock()
	}
}

func (g *Gate) busy() bool { return g.inflight.Load() >= int64(g.cfg.Busy) }

// releaseLocked lets every held task go.
func (g *Gate) releaseLocked() {
	close(g.wake)
	g.wake = make(chan struct{})
}

// Wait holds the caller (a task about to start) while the API is busy, the
// budget lasts and ctx allows; it returns at once otherwise.
func (g *Gate) Wait(ctx context.Context) {
	if g == nil || !g.busy() {
		return
	}
	g.mu.Lock()
	if g.spent || g.closed {
		g.mu.Unlock()
		return
	}
	now := time.Now()
	left := g.cfg.Budget - g.usedLocked(now)
	if dl, ok := ctx.Deadline(); ok {
		left = min(left, time.Until(dl)/2)
	}
	if left <= 0 {
		g.mu.Unlock()
		return
	}
	if g.waiting.Add(1) == 1 {
		g.heldSince = now
	}
	wake := g.wake
	g.mu.Unlock()

	// Checked again after counting this task as waiting: a Leave that ran
	// before saw no waiter and released nothing, one that runs after will.
	if g.busy() {
		if g.onHold != nil {
			g.onHold()
		}
		t := time.NewTimer(left)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	now = time.Now()
	if g.waiting.Add(-1) == 0 {
		held := now.Sub(g.heldSince)
		g.used += held
		g.total += held
	}
	if !g.spent && g.usedLocked(now) >= g.cfg.Budget {
		g.spent = true
		g.releaseLocked()
		g.cfg.Logger.Warn("background tasks were held back for the API for the whole budget: the worker takes its share of the CPU again until its queues are empty",
			"budget", g.cfg.Budget.String())
	}
}

// usedLocked is the budget used so far, the current holding period included.
func (g *Gate) usedLocked(now time.Time) time.Duration {
	if g.waiting.Load() > 0 {
		return g.used + now.Sub(g.heldSince)
	}
	return g.used
}

// Run renews the budget whenever the queues are found empty, until ctx ends.
func (g *Gate) Run(ctx context.Context) {
	if g == nil {
		return
	}
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.check(ctx)
		}
	}
}

// check renews the budget if part of it is used and the queues are empty.
func (g *Gate) check(ctx context.Context) {
	g.mu.Lock()
	inUse := g.used > 0 || g.waiting.Load() > 0 || g.spent
	g.mu.Unlock()
	if !inUse {
		return
	}
	if g.cfg.Backlog != nil {
		n, err := g.cfg.Backlog(ctx)
		if err != nil {
			g.cfg.Logger.Debug("precedence: read the backlog", "err", err)
			return
		}
		if n > 0 {
			return
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if g.waiting.Load() > 0 {
		g.total += now.Sub(g.heldSince)
		g.heldSince = now
	}
	g.used = 0
	g.spent = false
}

// Close stops holding tasks, for good (shutdown: the API no longer serves).
func (g *Gate) Close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		g.releaseLocked()
	}
}

// Stats is a gate's state, for metrics.
type Stats struct {
	InFlight int64         // API requests in flight
	Held     int64         // tasks held now
	HeldTime time.Duration // time during which tasks were held, in all
	Spent    bool          // the budget is used up until the queues are empty
}

// Stats returns the gate's state.
func (g *Gate) Stats() Stats {
	if g == nil {
		return Stats{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	total := g.total
	if g.waiting.Load() > 0 {
		total += time.Since(g.heldSince)
	}
	return Stats{InFlight: g.inflight.Load(), Held: g.waiting.Load(), HeldTime: total, Spent: g.spent}
}
