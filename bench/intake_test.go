package bench

import (
	"strings"
	"testing"
	"time"
)

func TestBestClientsIsTheFastestStepWithoutErrors(t *testing.T) {
	steps := []Row{
		{Clients: 1, Throughput: 150},
		{Clients: 8, Throughput: 700},
		{Clients: 32, Throughput: 880},
		{Clients: 64, Throughput: 990, Errors: 3}, // faster, but it dropped requests
	}
	if got := bestClients(steps); got != 32 {
		t.Errorf("bestClients = %d; want 32 (64 failed requests)", got)
	}
	if got := bestClients(steps[:2]); got != 8 {
		t.Errorf("bestClients of 1 and 8 clients = %d; want 8", got)
	}
	if got := bestClients([]Row{{Clients: 8, Errors: 1, Throughput: 10}}); got != 0 {
		t.Errorf("bestClients with no clean step = %d; want 0", got)
	}
}

// The database probe counts statements over the window; the row gives them
// per successful operation, and says nothing when there was none.
func TestRowFromGivesStatementsPerOperation(t *testing.T) {
	st := stepStats{OK: 400, Window: time.Second, Metrics: map[string]float64{"db_statements": 2900}}
	r := rowFrom("intake", "8 clients", st)
	if got := r.Metrics["db_statements_per_op"]; got != 7.25 {
		t.Errorf("db_statements_per_op = %v; want 7.25 (2900 statements for 400 orders)", got)
	}
	if !strings.Contains(r.Notes, "db: 7.2 statements/op") {
		t.Errorf("notes %q lack the statements per order", r.Notes)
	}
	st.OK = 0
	if r := rowFrom("intake", "8 clients", st); strings.Contains(r.Notes, "statements/op") {
		t.Errorf("notes %q: no operation succeeded, so no statements per operation", r.Notes)
	}
}
