package worker_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker"
	"github.com/iacc/iacc/worker/accounting"
	"github.com/iacc/iacc/worker/accounting/accountingtest"
)

// acctBundle is a worker whose accounting partner is a fake one.
type acctBundle struct {
	db      *store.DB
	rdb     *storetest.Redis
	client  *asynq.Client
	partner *accountingtest.Partner
	w       *worker.Worker
	ten     store.Tenant
	vendor  store.Vendor
}

func acctSetup(t *testing.T, cfg worker.Config, partnerOpts ...accountingtest.Option) acctBundle {
	t.Helper()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	partner := accountingtest.New(t, partnerOpts...)
	conn, err := accounting.NewREST(accounting.RESTConfig{BaseURL: partner.URL(), Token: partner.Token(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(rdb.Client)
	w := worker.New(cfg, worker.Deps{DB: db, Redis: rdb.Client, Client: client, Blobs: blobs, Accounting: conn})
	t.Cleanup(w.Shutdown)
	ten := storetest.Tenant(t, db, "acct")
	return acctBundle{db: db, rdb: rdb, client: client, partner: partner, w: w, ten: ten, vendor: storetest.Vendor(t, db, ten.ID, "Paper Co")}
}

// lowTasks lists the pending accounting:sync tasks.
func (b acctBundle) lowTasks(t *testing.T) []*asynq.TaskInfo {
	t.Helper()
	infos, err := asynq.NewInspectorFromRedisClient(b.rdb.Client).ListPendingTasks(tasks.QueueLow)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	return slices.DeleteFunc(infos, func(i *asynq.TaskInfo) bool { return i.Type != (tasks.AccountingSync{}).Kind() })
}

// runInfo runs a queued task through the worker's mux (middleware included).
func (b acctBundle) runInfo(t *testing.T, info *asynq.TaskInfo) error {
	t.Helper()
	return b.w.Handler().ProcessTask(context.Background(), asynq.NewTask(info.Type, info.Payload))
}

// An order created and dispatched (twice) queues one accounting:sync task
// with a TaskID per version; run twice, it makes one purchase order at the
// partner, whose id is stored. The approval's dispatch updates it.
func TestOrderDispatchSyncsOnePurchaseOrder(t *testing.T) {
	t.Parallel()
	b := acctSetup(t, worker.Config{})
	po := storetest.PurchaseOrder(t, b.db, b.ten.ID, b.vendor.ID, 2)
	for i := range 2 {
		if err := run(t, b.w.Handler(), tasks.EventDispatch{EventID: po.Event.ID}); err != nil {
			t.Fatalf("dispatch %d: %v", i, err)
		}
	}
	queued := b.lowTasks(t)
	want := tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPurchaseOrder, DocID: po.Order.ID, Version: 1, EventID: po.Event.ID}
	if len(queued) != 1 || queued[0].ID != want.TaskID() {
		t.Fatalf("queued accounting tasks = %v, want one with ID %s", queued, want.TaskID())
	}
	for i := range 2 {
		if err := b.runInfo(t, queued[0]); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	docs := b.partner.Documents(b.ten.ID, "purchase-orders")
	if len(docs) != 1 {
		t.Fatalf("partner holds %d purchase orders, want 1", len(docs))
	}
	row, err := store.GetAccountingSync(context.Background(), b.db, b.ten.ID, store.AccountingPurchaseOrder, po.Order.ID)
	if err != nil || row.ExternalID != docs[0].ID || row.State != store.AccountingSynced {
		t.Fatalf("sync row = %+v, %v; partner id %s", row, err, docs[0].ID)
	}

	// Approve: purchase_order.approved → a version 2 task → PUT.
	var approved store.TransitionedPurchaseOrder
	err = b.db.InTx(context.Background(), func(tx *sql.Tx) error {
		approved, err = store.TransitionPurchaseOrder(context.Background(), tx, b.ten.ID, po.Order.ID, "approve", 0, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := run(t, b.w.Handler(), tasks.EventDispatch{EventID: approved.Event.ID}); err != nil {
		t.Fatal(err)
	}
	var v2 *asynq.TaskInfo
	for _, info := range b.lowTasks(t) {
		if strings.HasSuffix(info.ID, "-v2") {
			v2 = info
		}
	}
	if v2 == nil {
		t.Fatalf("no version 2 sync queued: %v", b.lowTasks(t))
	}
	if err := b.runInfo(t, v2); err != nil {
		t.Fatal(err)
	}
	docs = b.partner.Documents(b.ten.ID, "purchase-orders")
	reqs := b.partner.Requests()
	if len(docs) != 1 || docs[0].Version != 2 || docs[0].Body["status"] != "approved" || reqs[len(reqs)-1].Method != "PUT" {
		t.Fatalf("after approval the partner holds %+v (last request %+v)", docs, reqs[len(reqs)-1])
	}
}

// With accounting off (no connector), events cause no accounting syncs.
func TestAccountingOffQueuesNothing(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{}, worker.Deps{DB: db, Redis: rdb.Client, Client: asynq.NewClientFromRedisClient(rdb.Client), Blobs: blobs})
	t.Cleanup(w.Shutdown)
	ten := storetest.Tenant(t, db, "acct-off")
	po := storetest.PurchaseOrder(t, db, ten.ID, storetest.Vendor(t, db, ten.ID, "Off Co").ID, 1)
	if err := run(t, w.Handler(), tasks.EventDispatch{EventID: po.Event.ID}); err != nil {
		t.Fatal(err)
	}
	b := acctBundle{rdb: rdb}
	if queued := b.lowTasks(t); len(queued) != 0 {
		t.Fatalf("accounting off queued %v", queued)
	}
}

// A rejected document shows in the order's activity timeline: the started
// worker runs the event's sync, which is archived with the partner's message.
func TestRejectedSyncShowsInTheTimeline(t *testing.T) {
	t.Parallel()
	b := acctSetup(t, worker.Config{})
	ctx := context.Background()
	po := storetest.PurchaseOrder(t, b.db, b.ten.ID, b.vendor.ID, 0) // no lines: rejected
	if _, err := tasks.PublishEvent(ctx, b.client, po.Event.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.w.Start(); err != nil {
		t.Fatal(err)
	}
	var entry store.TaskRun
	acctEventually(t, "the rejected sync in the timeline", func() bool {
		b.w.FlushRecords()
		runs, err := store.ListTaskRunsOfEvents(ctx, b.db, []int64{po.Event.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if r.TaskType == (tasks.AccountingSync{}).Kind() && r.State == store.TaskArchived {
				entry = r
				return true
			}
		}
		return false
	})
	if !strings.Contains(entry.LastError, "needs attention") || !strings.Contains(entry.LastError, "at least one line") || entry.Attempts != 1 {
		t.Errorf("timeline entry = %+v", entry)
	}
	row, err := store.GetAccountingSync(ctx, b.db, b.ten.ID, store.AccountingPurchaseOrder, po.Order.ID)
	if err != nil || row.State != store.AccountingNeedsAttention || row.EventID != po.Event.ID {
		t.Fatalf("sync row = %+v, %v", row, err)
	}
}

// acctEventually waits for cond with a deadline (polling: task records
// have nothing to block on).
func acctEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// A burst of syncs for one tenant, run by a started worker with a limit of
// N per second, never puts more than N requests in any one second at the
// partner (which would answer 429 beyond N), and every document arrives.
func TestBurstStaysUnderTheTenantRateLimit(t *testing.T) {
	t.Parallel()
	const perSecond, orders = 4, 12
	b := acctSetup(t, worker.Config{AccountingRatePerSecond: perSecond}, accountingtest.WithRateLimit(perSecond))
	ctx := context.Background()
	for range orders {
		po := storetest.PurchaseOrder(t, b.db, b.ten.ID, b.vendor.ID, 1)
		p := tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPurchaseOrder, DocID: po.Order.ID, Version: 1, EventID: po.Event.ID}
		if _, err := tasks.Enqueue(ctx, b.client, p, p.TaskID()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.w.Start(); err != nil {
		t.Fatal(err)
	}
	b.partner.WaitFor(t, "every order at the partner", func() bool {
		return len(b.partner.Documents(b.ten.ID, "purchase-orders")) == orders
	})
	reqs := b.partner.Requests()
	for i, r := range reqs {
		if r.Status == 429 {
			t.Errorf("request %d was answered 429: the partner's limit was exceeded", i)
		}
		n := 0
		for _, o := range reqs[i:] {
			if o.Arrived.Sub(r.Arrived) < time.Second {
				n++
			}
		}
		if n > perSecond {
			t.Errorf("%d requests arrived within one second from request %d (limit %d)", n, i, perSecond)
		}
	}
	if len(reqs) != orders {
		t.Errorf("partner got %d requests for %d orders", len(reqs), orders)
	}
	first, last := reqs[0].Arrived, reqs[len(reqs)-1].Arrived
	t.Logf("%d orders synced over %v", orders, last.Sub(first).Round(time.Millisecond))
}
