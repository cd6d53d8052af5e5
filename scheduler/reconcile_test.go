package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/iacc/iacc/scheduler"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// After Redis loses its data, the reconciler marks the events created since
// it last saw Redis intact for republishing, once, whichever scheduler
// notices first; older events are left alone.
func TestReconcilerReplaysEventsAfterRedisDataLoss(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "rec")
	old := insertEvents(t, db, ten.ID, 3)
	if _, err := db.Exec(`UPDATE outbox_events SET created_at = ?, published_at = ?, dispatched_at = ?`,
		time.Now().Add(-time.Hour), time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	r1 := scheduler.NewReconciler(db, rdb.Client, nil, time.Second, 0)
	r2 := scheduler.NewReconciler(db, rdb.Client, nil, time.Second, 0)
	for _, r := range []*scheduler.Reconciler{r1, r2, r1} { // first sight sets the marker; then all is well
		if n, err := r.Check(ctx); err != nil || n != 0 {
			t.Fatalf("check with intact Redis: n=%d err=%v", n, err)
		}
	}
	recent := insertEvents(t, db, ten.ID, 4)
	if _, err := db.Exec(`UPDATE outbox_events SET published_at = NOW(6), dispatched_at = NOW(6) WHERE id >= ?`, recent[0]); err != nil {
		t.Fatal(err)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil { // Redis restarted empty
		t.Fatal(err)
	}
	n1, err := r1.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := r2.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n1+n2 != 4 || (n1 != 0 && n2 != 0) {
		t.Errorf("replayed %d and %d, want 4 by exactly one reconciler", n1, n2)
	}
	for _, id := range recent {
		ev, err := store.GetEvent(ctx, db, id)
		if err != nil || ev.PublishedAt != nil || ev.DispatchedAt != nil {
			t.Errorf("recent event %d not marked for republishing: %+v %v", id, ev, err)
		}
	}
	for _, id := range old {
		ev, err := store.GetEvent(ctx, db, id)
		if err != nil || ev.PublishedAt == nil {
			t.Errorf("old event %d replayed: %+v %v", id, ev, err)
		}
	}
	if n, err := r1.Check(ctx); err != nil || n != 0 {
		t.Errorf("check after replay: n=%d err=%v", n, err)
	}
}
