package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func upsertRuns(t *testing.T, db *store.DB, runs ...store.TaskRun) {
	t.Helper()
	if err := store.UpsertTaskRuns(context.Background(), db, runs); err != nil {
		t.Fatal(err)
	}
}

func taskRun(t *testing.T, db *store.DB, taskID string) store.TaskRun {
	t.Helper()
	var r store.TaskRun
	err := db.QueryRow(`SELECT task_id, task_type, queue, tenant_id, event_id, state, attempts, last_error, created_at, updated_at FROM task_runs WHERE task_id = ?`, taskID).
		Scan(&r.TaskID, &r.TaskType, &r.Queue, &r.TenantID, &r.EventID, &r.State, &r.Attempts, &r.LastError, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		t.Fatalf("task run %s: %v", taskID, err)
	}
	return r
}

func run(id string, eventID int64, state string, attempts int, lastError string, at time.Time) store.TaskRun {
	return store.TaskRun{TaskID: id, TaskType: "pdf:render", Queue: "default", TenantID: 1, EventID: eventID, State: state, Attempts: attempts, LastError: lastError, UpdatedAt: at}
}

func TestUpsertTaskRunsInsertsBatchAndLists(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC)
	upsertRuns(t, db,
		run("a", 10, store.TaskActive, 1, "", t0),
		run("b", 10, store.TaskRetry, 2, "smtp 451", t0.Add(time.Second)),
		store.TaskRun{TaskID: "c", TaskType: "webhook:deliver", Queue: "webhooks", TenantID: 3, EventID: 11, State: store.TaskCompleted, Attempts: 1, UpdatedAt: t0.Add(2 * time.Second)},
		run("d", 12, store.TaskArchived, 25, "gave up", t0.Add(3*time.Second)),
	)
	if n := countOf(t, db, `SELECT COUNT(*) FROM task_runs`); n != 4 {
		t.Fatalf("%d task runs, want 4", n)
	}
	c := taskRun(t, db, "c")
	if c.TaskType != "webhook:deliver" || c.Queue != "webhooks" || c.TenantID != 3 || c.EventID != 11 || c.State != store.TaskCompleted ||
		c.Attempts != 1 || c.LastError != "" || !c.UpdatedAt.Equal(t0.Add(2*time.Second)) || !c.CreatedAt.Equal(c.UpdatedAt) {
		t.Errorf("stored run c = %+v", c)
	}

	ids := func(runs []store.TaskRun) []string {
		out := []string{}
		for _, r := range runs {
			out = append(out, r.TaskID)
		}
		return out
	}
	for _, c := range []struct {
		events []int64
		want   []string
	}{
		{[]int64{10}, []string{"a", "b"}},
		{[]int64{10, 11}, []string{"a", "b", "c"}},
		{[]int64{12, 11}, []string{"c", "d"}},
		{[]int64{999}, []string{}},
	} {
		got, err := store.ListTaskRunsOfEvents(ctx, db, c.events)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("runs of events %v = %v, want %v", c.events, ids(got), c.want)
		}
	}
	got, err := store.ListTaskRunsOfEvents(ctx, db, []int64{10})
	if err != nil {
		t.Fatal(err)
	}
	if b := got[1]; b.State != store.TaskRetry || b.Attempts != 2 || b.LastError != "smtp 451" || !b.UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("listed run b = %+v", b)
	}
	if got, err := store.ListTaskRunsOfEvents(ctx, db, nil); err != nil || len(got) != 0 {
		t.Errorf("runs of no events = %v, %v", got, err)
	}
	if err := store.UpsertTaskRuns(ctx, db, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func TestUpsertTaskRunsLaterStateWins(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	check := func(step, state string, attempts int, lastError string, updated time.Time) {
		t.Helper()
		r := taskRun(t, db, "x")
		if r.State != state || r.Attempts != attempts || r.LastError != lastError || !r.UpdatedAt.Equal(updated) || !r.CreatedAt.Equal(t0) {
			t.Errorf("after %s: state %s attempts %d error %q updated %s created %s; want %s %d %q %s created %s",
				step, r.State, r.Attempts, r.LastError, r.UpdatedAt, r.CreatedAt, state, attempts, lastError, updated, t0)
		}
	}

	upsertRuns(t, db, run("x", 1, store.TaskActive, 1, "", t0))
	upsertRuns(t, db, run("x", 1, store.TaskRetry, 1, "timeout", t0.Add(2*time.Second)))
	check("a later retry", store.TaskRetry, 1, "timeout", t0.Add(2*time.Second))

	// An older report (delivered late) changes neither state nor time.
	upsertRuns(t, db, run("x", 1, store.TaskActive, 1, "", t0.Add(time.Second)))
	check("an older active state", store.TaskRetry, 1, "timeout", t0.Add(2*time.Second))

	// Attempts never decrease, even from a newer report.
	upsertRuns(t, db, run("x", 1, store.TaskActive, 3, "", t0.Add(3*time.Second)))
	upsertRuns(t, db, run("x", 1, store.TaskRetry, 2, "", t0.Add(4*time.Second)))
	check("a newer report with fewer attempts", store.TaskRetry, 3, "timeout", t0.Add(4*time.Second))

	// An older report with more attempts raises them but keeps the state.
	upsertRuns(t, db, run("x", 1, store.TaskArchived, 5, "", t0.Add(time.Second)))
	check("an older report with more attempts", store.TaskRetry, 5, "timeout", t0.Add(4*time.Second))

	// A newer error replaces the last one; completion without an error keeps it.
	upsertRuns(t, db, run("x", 1, store.TaskRetry, 6, "connection refused", t0.Add(5*time.Second)))
	check("a newer error", store.TaskRetry, 6, "connection refused", t0.Add(5*time.Second))
	upsertRuns(t, db, run("x", 1, store.TaskCompleted, 6, "", t0.Add(6*time.Second)))
	check("completion", store.TaskCompleted, 6, "connection refused", t0.Add(6*time.Second))

	// Within one batch, the later state wins whatever the order.
	upsertRuns(t, db, run("y", 1, store.TaskCompleted, 2, "", t0.Add(2*time.Second)), run("y", 1, store.TaskActive, 1, "", t0.Add(time.Second)))
	if r := taskRun(t, db, "y"); r.State != store.TaskCompleted || r.Attempts != 2 || !r.UpdatedAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("run y = %+v, want completed after 2 attempts", r)
	}
	if n := countOf(t, db, `SELECT COUNT(*) FROM task_runs`); n != 2 {
		t.Errorf("%d task runs, want 2", n)
	}
}

// The last error is part of the state: a report older than the stored one
// (delivered late by another worker's batch) must not replace it.
func TestUpsertTaskRunsOlderErrorDoesNotReplaceNewer(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	upsertRuns(t, db, run("x", 1, store.TaskRetry, 2, "second failure", t0.Add(2*time.Second)))
	upsertRuns(t, db, run("x", 1, store.TaskRetry, 1, "first failure", t0.Add(time.Second)))
	if r := taskRun(t, db, "x"); r.State != store.TaskRetry || r.Attempts != 2 || r.LastError != "second failure" || !r.UpdatedAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("after a late older report: state %s attempts %d error %q updated %s; want retry, 2, \"second failure\", %s",
			r.State, r.Attempts, r.LastError, r.UpdatedAt, t0.Add(2*time.Second))
	}
}

// Error texts are cut to the column's 1000 characters; cutting must not
// split a multi-byte character (the server refuses invalid UTF-8 and the
// whole batch would be lost).
func TestUpsertTaskRunsTruncatesLongErrors(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ascii := strings.Repeat("x", 1500)
	multi := strings.Repeat("€", 400) // 1200 bytes, 400 characters
	err := store.UpsertTaskRuns(context.Background(), db, []store.TaskRun{
		run("ascii", 1, store.TaskRetry, 1, ascii, time.Time{}),
		run("multi", 1, store.TaskRetry, 1, multi, time.Time{}),
	})
	if err != nil {
		t.Fatalf("batch with long error texts: %v", err)
	}
	if got := taskRun(t, db, "ascii").LastError; got != ascii[:1000] {
		t.Errorf("ascii error stored with %d characters, want the first 1000", len(got))
	}
	got := taskRun(t, db, "multi").LastError
	if !utf8.ValidString(got) || !strings.HasPrefix(multi, got) || utf8.RuneCountInString(got) < 333 {
		t.Errorf("multi-byte error stored as %d characters (%q...), want a valid prefix", utf8.RuneCountInString(got), got[:min(len(got), 12)])
	}
	if r := taskRun(t, db, "ascii"); r.UpdatedAt.IsZero() || time.Since(r.UpdatedAt) > time.Hour {
		t.Errorf("a run without time got updated_at %s, want now", r.UpdatedAt)
	}
}
