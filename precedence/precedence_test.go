package precedence

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// never is longer than any test may take: a Wait that still holds after it
// failed to let go.
const never = 10 * time.Second

// holding starts Wait in a goroutine and returns once the task is held, with
// a channel closed when Wait returns.
func holding(t *testing.T, g *Gate, ctx context.Context) <-chan struct{} {
	t.Helper()
	held := make(chan struct{}, 1)
	g.onHold = func() { held <- struct{}{} }
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Wait(ctx)
	}()
	select {
	case <-held:
	case <-done:
		t.Fatal("Wait returned without holding the task")
	case <-time.After(never):
		t.Fatal("the task was never held")
	}
	return done
}

func returns(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(never):
		t.Fatalf("Wait still holds the task: %s", what)
	}
}

func stillHeld(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
		t.Fatal("Wait returned while the API was busy")
	default:
	}
}

func enter(g *Gate, n int) {
	for range n {
		g.Enter()
	}
}

func TestOffGateHoldsNothing(t *testing.T) {
	g := New(Config{Budget: 0})
	if g != nil {
		t.Fatal("a zero budget must turn the gate off")
	}
	g.Enter()
	g.Wait(context.Background()) // a nil gate returns at once
	g.Leave()
	if s := g.Stats(); s != (Stats{}) {
		t.Fatalf("stats of an off gate: %+v", s)
	}
}

func TestTasksRunWhileTheAPIIsNotBusy(t *testing.T) {
	g := New(Config{Budget: never, Busy: 2})
	g.Enter() // one request: below Busy
	start := time.Now()
	g.Wait(context.Background())
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Wait took %s with the API not busy", d)
	}
	if s := g.Stats(); s.Held != 0 || s.HeldTime != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestTasksWaitForABusyAPI(t *testing.T) {
	g := New(Config{Budget: never, Busy: 2})
	enter(g, 3)
	done := holding(t, g, context.Background())
	if s := g.Stats(); s.Held != 1 || s.InFlight != 3 {
		t.Fatalf("stats while held: %+v", s)
	}
	want := `
# HELP iacc_precedence_budget_spent 1 while the API's precedence budget is used up: tasks run at once until the queues are empty (IACC_API_PRECEDENCE).
# TYPE iacc_precedence_budget_spent gauge
iacc_precedence_budget_spent 0
# HELP iacc_precedence_held_tasks Tasks the worker holds back now because the API of the same process is busy (IACC_API_PRECEDENCE).
# TYPE iacc_precedence_held_tasks gauge
iacc_precedence_held_tasks 1
`
	if err := testutil.CollectAndCompare(NewCollector(g), strings.NewReader(want), "iacc_precedence_held_tasks", "iacc_precedence_budget_spent"); err != nil {
		t.Error(err)
	}
	g.Leave() // 2 in flight: still busy
	stillHeld(t, done)
	g.Leave() // 1: not busy
	returns(t, done, "the API is no longer busy")
	s := g.Stats()
	if s.Held != 0 || s.HeldTime <= 0 || s.Spent {
		t.Fatalf("stats after: %+v", s)
	}
}

func TestTheBudgetBoundsTheHoldingUntilTheQueuesAreEmpty(t *testing.T) {
	var backlog atomic.Int64
	var backlogErr atomic.Bool
	backlog.Store(5)
	budget := 100 * time.Millisecond
	g := New(Config{Budget: budget, Busy: 1,
		Backlog: func(context.Context) (int64, error) {
			if backlogErr.Load() {
				return 0, errors.New("redis: connection refused")
			}
			return backlog.Load(), nil
		}})
	g.Enter() // busy from now on
	first := holding(t, g, context.Background())
	second := holding(t, g, context.Background())
	start := time.Now()
	returns(t, first, "the budget is used up")
	returns(t, second, "the budget is used up")
	if d := time.Since(start); d > never/2 {
		t.Fatalf("held for %s with a budget of %s", d, budget)
	}
	s := g.Stats()
	if !s.Spent || s.HeldTime < budget {
		t.Fatalf("stats after the budget: %+v", s)
	}
	// Spent: a task runs at once although the API is still busy.
	g.onHold = func() { t.Error("a task was held after the budget was used up") }
	g.Wait(context.Background())

	// The queues still hold tasks: the budget is not renewed.
	g.check(context.Background())
	if !g.Stats().Spent {
		t.Fatal("the budget was renewed while tasks were queued")
	}
	// Redis cannot be read: the budget is not renewed either, so tasks
	// keep running at once (the gate fails open).
	backlogErr.Store(true)
	backlog.Store(0)
	g.check(context.Background())
	if !g.Stats().Spent {
		t.Fatal("the budget was renewed although the backlog could not be read")
	}
	g.onHold = func() { t.Error("a task was held while the backlog could not be read") }
	g.Wait(context.Background())
	backlogErr.Store(false)
	backlog.Store(0)
	g.check(context.Background())
	if g.Stats().Spent {
		t.Fatal("the budget was not renewed when the queues were empty")
	}
	done := holding(t, g, context.Background())
	g.Leave()
	returns(t, done, "the API is no longer busy")
}

func TestATaskIsHeldForHalfItsRemainingTimeAtMost(t *testing.T) {
	g := New(Config{Budget: never, Busy: 1})
	g.Enter()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := holding(t, g, ctx)
	returns(t, done, "half of the task's time is gone")
	if ctx.Err() != nil {
		t.Fatal("the task was held until its deadline")
	}
	if g.Stats().Spent {
		t.Fatal("a task's own deadline used up the gate's budget")
	}
}

func TestCancelAndCloseLetTasksGo(t *testing.T) {
	g := New(Config{Budget: never, Busy: 1})
	g.Enter()
	ctx, cancel := context.WithCancel(context.Background())
	done := holding(t, g, ctx)
	cancel()
	returns(t, done, "its context was canceled")

	done = holding(t, g, context.Background())
	g.Close()
	returns(t, done, "the gate was closed")
	g.onHold = func() { t.Error("a closed gate held a task") }
	g.Wait(context.Background())
}
