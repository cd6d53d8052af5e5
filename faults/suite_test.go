package faults

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// An Alone scenario starts first and no other runs while it does; the
// others then run Parallel at once, long ones first.
func TestAloneScenarioRunsFirstWithNoOtherAtOnce(t *testing.T) {
	var mu sync.Mutex
	running := map[string]bool{}
	var started, overlaps []string
	anyStart := make(chan string, 8)
	startedCh := map[string]chan struct{}{"long": make(chan struct{}), "x": make(chan struct{})}
	scenario := func(num int, name string, body func()) Scenario {
		return Scenario{Num: num, Name: name, Run: func(context.Context, *Suite, *Result) error {
			mu.Lock()
			for other := range running {
				overlaps = append(overlaps, name+" with "+other)
			}
			running[name] = true
			started = append(started, name)
			mu.Unlock()
			anyStart <- name
			if ch, ok := startedCh[name]; ok {
				close(ch)
			}
			body()
			mu.Lock()
			delete(running, name)
			mu.Unlock()
			return nil
		}}
	}
	// long and x wait for each other: they can end only if both run at once
	// (Parallel 2).
	meet := func(other string) func() {
		return func() {
			select {
			case <-startedCh[other]:
			case <-time.After(10 * time.Second):
				t.Errorf("%s never started while the other ran", other)
			}
		}
	}
	long := scenario(1, "long", meet("x"))
	long.Long = true
	alone := scenario(8, "alone", func() {
		<-anyStart // its own start
		// Give a scheduler that does not wait for it the time to start
		// another scenario.
		select {
		case name := <-anyStart:
			t.Errorf("%s started while the Alone scenario ran", name)
		case <-time.After(300 * time.Millisecond):
		}
	})
	alone.Alone = true
	scs := []Scenario{long, scenario(2, "x", meet("long")), scenario(3, "y", func() {}), alone}

	s := &Suite{opts: Options{Parallel: 2, Out: io.Discard}}
	rs := s.run(context.Background(), scs)

	if len(rs) != 4 || rs[0].Name != "long" || rs[3].Name != "alone" {
		t.Fatalf("results %v, want the four in scenario order", rs)
	}
	for _, r := range rs {
		if !r.Pass {
			t.Errorf("%s failed: %v", r.Name, r.Failures)
		}
	}
	// long and x hold both slots until they meet, so y starts after them.
	if len(started) != 4 || started[0] != "alone" || started[3] != "y" {
		t.Errorf("start order %v, want alone, then long and x, then y", started)
	}
	for _, o := range overlaps {
		if strings.Contains(o, "alone") {
			t.Errorf("overlap %q", o)
		}
	}
	if !slices.Contains(overlaps, "x with long") && !slices.Contains(overlaps, "long with x") {
		t.Errorf("overlaps %v: long and x should have run at once (Parallel 2)", overlaps)
	}
}
