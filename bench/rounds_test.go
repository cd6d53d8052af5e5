package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// steps returns a function that hands out rows with the given rates in turn.
func steps(t *testing.T, scenario string, rates ...float64) (func() (Row, error), *int) {
	t.Helper()
	n := 0
	return func() (Row, error) {
		if n >= len(rates) {
			t.Fatalf("%s: step %d asked for, only %d planned", scenario, n+1, len(rates))
		}
		n++
		return Row{Scenario: scenario, Step: "8 clients", Throughput: rates[n-1], Metrics: map[string]float64{}}, nil
	}, &n
}

func TestInRoundsJudgesTheMedianRoundAgainstItsBracketingCeilings(t *testing.T) {
	h := &Harness{cfg: Config{Rounds: 3}}
	ceiling, ceilings := steps(t, "ceiling", 100, 200, 100, 300)
	measure, measured := steps(t, "iacc", 75, 120, 140)
	first := Row{Scenario: "ceiling", Step: "8 clients", Throughput: 1000}
	row, err := h.inRounds(context.Background(), first, func(string) (Row, error) { return ceiling() }, measure)
	if err != nil {
		t.Fatal(err)
	}
	if *ceilings != 4 || *measured != 3 {
		t.Fatalf("%d ceiling steps and %d steps; want 4 and 3 (C S C S C S C)", *ceilings, *measured)
	}
	// Rounds: 75/150 = 0.50, 120/150 = 0.80, 140/200 = 0.70: the median is
	// the third round.
	if row.Throughput != 140 || row.Ceiling != 200 || row.Ratio != 0.7 {
		t.Errorf("row: %v/s vs %v/s = %v; want the third round, 140 vs 200 = 0.7", row.Throughput, row.Ceiling, row.Ratio)
	}
	m := row.Metrics
	if m["ceiling_before_per_s"] != 100 || m["ceiling_after_per_s"] != 300 || m["ratio_min"] != 0.5 || m["ratio_max"] != 0.8 || m["rounds"] != 3 {
		t.Errorf("metrics: %v", m)
	}
	for _, want := range []string{"median of 3 rounds", "75.0/s vs 100→200/s = 0.50", "120/s vs 200→100/s = 0.80", "140/s vs 100→300/s = 0.70", "1000/s earlier in the run"} {
		if !strings.Contains(row.Notes, want) {
			t.Errorf("notes %q lack %q", row.Notes, want)
		}
	}
}

func TestInRoundsStopsAtTheFirstError(t *testing.T) {
	h := &Harness{cfg: Config{Rounds: 3}}
	ceiling, _ := steps(t, "ceiling", 100, 100)
	boom := errors.New("child exited")
	n := 0
	measure := func() (Row, error) {
		n++
		if n == 2 {
			return Row{Scenario: "iacc"}, boom
		}
		return Row{Scenario: "iacc", Throughput: 80, Metrics: map[string]float64{}}, nil
	}
	if _, err := h.inRounds(context.Background(), Row{}, func(string) (Row, error) { return ceiling() }, measure); !errors.Is(err, boom) {
		t.Fatalf("err = %v; want the step's error", err)
	}
	if n != 2 {
		t.Errorf("%d steps ran; want 2 (none after the error)", n)
	}
}

func TestInRoundsRunsOneRoundAtLeast(t *testing.T) {
	h := &Harness{cfg: Config{Rounds: 0}}
	ceiling, _ := steps(t, "ceiling", 100, 300)
	measure, measured := steps(t, "iacc", 140)
	row, err := h.inRounds(context.Background(), Row{}, func(string) (Row, error) { return ceiling() }, measure)
	if err != nil {
		t.Fatal(err)
	}
	if *measured != 1 || row.Ratio != 0.7 {
		t.Errorf("%d steps, ratio %v; want 1 step, 140/200 = 0.7", *measured, row.Ratio)
	}
}
