package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// GetOutboxStats runs on every metrics scrape, on a table that keeps a
// month of events: it counts each stage right, and it reads the rows it
// counts, not the dispatched history.
func TestOutboxStatsReadOnlyTheBacklog(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "outbox-stats")
	now := time.Now().UTC().Truncate(time.Microsecond)

	// The history: events published and dispatched.
	const history = 3000
	var b strings.Builder
	args := make([]any, 0, history*4)
	b.WriteString(`INSERT INTO outbox_events (tenant_id, event_type, aggregate_type, aggregate_id, payload, created_at, published_at, dispatched_at) VALUES `)
	for i := range history {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, 'purchase_order.created', 'purchase_order', 1, '{}', ?, ?, ?)`)
		at := now.Add(-time.Duration(history-i) * time.Second)
		args = append(args, ten.ID, at, at, at) // created, published, dispatched
	}
	if _, err := db.ExecContext(ctx, b.String(), args...); err != nil {
		t.Fatalf("insert the dispatched history: %v", err)
	}
	// The backlog: two events waiting for the queue, three published and
	// waiting for their dispatch.
	oldest := now.Add(-5 * time.Minute)
	backlog := []struct {
		created   time.Time
		published bool
	}{{oldest, false}, {now.Add(-time.Minute), false}, {now, true}, {now, true}, {now, true}}
	for _, e := range backlog {
		var published any
		if e.published {
			published = e.created
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO outbox_events (tenant_id, event_type, aggregate_type, aggregate_id, payload, created_at, published_at)
			VALUES (?, 'purchase_order.created', 'purchase_order', 2, '{}', ?, ?)`, ten.ID, e.created, published); err != nil {
			t.Fatalf("insert a backlog event: %v", err)
		}
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before := handlerReads(t, conn)
	st, err := store.GetOutboxStats(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	read := handlerReads(t, conn) - before

	if st.Pending != 2 || st.Undispatched != 3 {
		t.Errorf("pending %d, undispatched %d; want 2 and 3", st.Pending, st.Undispatched)
	}
	if st.OldestPending == nil || !st.OldestPending.Equal(oldest) {
		t.Errorf("oldest pending %v, want %v", st.OldestPending, oldest)
	}
	// The five backlog rows and a few index probes; a scan of the history
	// reads its 3,000 rows.
	if read > 50 {
		t.Errorf("the stats read %d rows for a backlog of 5 among %d events: a scan of the history", read, history+len(backlog))
	}
}

// handlerReads is the session's count of rows and index entries read
// (MariaDB's and MySQL's Handler_read_* counters).
func handlerReads(t *testing.T, conn *sql.Conn) int64 {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), `SHOW SESSION STATUS LIKE 'Handler_read%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(fmt.Errorf("read %s: %w", name, err))
		}
		total += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// MarkDispatched marks every event it is given, once: an event marked
// already keeps its first time, and events not named stay unmarked.
func TestMarkDispatchedSeveral(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "dispatched")
	v := storetest.Vendor(t, db, ten.ID, "Globex")
	var ids []int64
	for range 4 {
		ids = append(ids, storetest.PurchaseOrder(t, db, ten.ID, v.ID, 1).Event.ID)
	}
	if err := store.MarkDispatched(ctx, db, ids[0]); err != nil {
		t.Fatal(err)
	}
	first, err := store.GetEvent(ctx, db, ids[0])
	if err != nil || first.DispatchedAt == nil {
		t.Fatalf("event %d: %+v %v", ids[0], first, err)
	}
	if err := store.MarkDispatched(ctx, db, ids[0], ids[1], ids[2]); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		ev, err := store.GetEvent(ctx, db, id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i == 0 && (ev.DispatchedAt == nil || !ev.DispatchedAt.Equal(*first.DispatchedAt)):
			t.Errorf("event %d dispatched at %v, want its first mark %v", id, ev.DispatchedAt, first.DispatchedAt)
		case i < 3 && ev.DispatchedAt == nil:
			t.Errorf("event %d not marked dispatched", id)
		case i == 3 && ev.DispatchedAt != nil:
			t.Errorf("event %d, not named, marked dispatched", id)
		}
	}
}
