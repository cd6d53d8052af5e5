package worker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker"
	"github.com/iacc/iacc/worker/pdf"
	"github.com/iacc/iacc/worker/pdf/pdftext"
)

type bundle struct {
	db     *store.DB
	rdb    *storetest.Redis
	blobs  *blob.Dir
	mux    asynq.Handler
	w      *worker.Worker // not started; shut down at the end of the test
	client *asynq.Client
}

// setup builds an unstarted worker on a fresh database and Redis DB;
// withDeps edits its dependencies before it is built.
func setup(t *testing.T, withDeps ...func(*worker.Deps)) bundle {
	t.Helper()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(rdb.Client)
	deps := worker.Deps{DB: db, Redis: rdb.Client, Client: client, Blobs: blobs}
	for _, edit := range withDeps {
		edit(&deps)
	}
	w := worker.New(worker.Config{}, deps)
	t.Cleanup(w.Shutdown)
	return bundle{db: db, rdb: rdb, blobs: blobs, mux: w.Handler(), w: w, client: client}
}

func run(t *testing.T, h asynq.Handler, p tasks.Payload) error {
	t.Helper()
	task, err := tasks.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return h.ProcessTask(context.Background(), task)
}

// Dispatching an order event enqueues its PDF task once, however often the
// dispatch runs; rendering it twice leaves one document and one file whose
// text names the order and the vendor.
func TestOrderEventRendersOnePDF(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, b.db, "acme")
	v := storetest.Vendor(t, b.db, ten.ID, "Globex Hardware")
	po := storetest.PurchaseOrder(t, b.db, ten.ID, v.ID, 3)

	for i := 0; i < 2; i++ {
		if err := run(t, b.mux, tasks.EventDispatch{EventID: po.Event.ID}); err != nil {
			t.Fatalf("dispatch %d: %v", i, err)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(b.rdb.Client)
	pending, err := insp.ListPendingTasks(tasks.QueueDefault)
	if err != nil {
		t.Fatal(err)
	}
	var renders []*asynq.TaskInfo // the order also causes emails (worker/email tests)
	for _, ti := range pending {
		if ti.Type == (tasks.PDFRender{}).Kind() {
			renders = append(renders, ti)
		}
	}
	if len(renders) != 1 {
		t.Fatalf("pending pdf:render tasks = %v, want one", renders)
	}
	ev, err := store.GetEvent(ctx, b.db, po.Event.ID)
	if err != nil || ev.DispatchedAt == nil {
		t.Fatalf("event not marked dispatched: %+v %v", ev, err)
	}
	render := tasks.PDFRender{TenantID: ten.ID, DocKind: store.DocPurchaseOrder, SubjectID: po.Order.ID, Version: 1}
	for i := 0; i < 2; i++ {
		if err := run(t, b.mux, render); err != nil {
			t.Fatalf("render %d: %v", i, err)
		}
	}
	n, err := store.CountDocuments(ctx, b.db, ten.ID, store.DocPurchaseOrder, po.Order.ID)
	if err != nil || n != 1 {
		t.Fatalf("documents = %d (%v), want 1", n, err)
	}
	doc, err := store.GetDocument(ctx, b.db, ten.ID, store.DocPurchaseOrder, po.Order.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(b.blobs.Root(), filepath.Dir(doc.BlobKey), "*"))
	if len(files) != 1 {
		t.Errorf("blob dir holds %v, want one file", files)
	}
	raw, err := os.ReadFile(filepath.Join(b.blobs.Root(), doc.BlobKey))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != doc.Size {
		t.Errorf("file is %d bytes, record says %d", len(raw), doc.Size)
	}
	text, err := pdftext.Extract(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{po.Order.Number(), "Globex Hardware", ten.Name} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q:\n%s", want, text)
		}
	}
	if doc.BlobKey != pdf.BlobKey(ten.ID, store.DocPurchaseOrder, po.Order.ID, 1) {
		t.Errorf("blob key %s", doc.BlobKey)
	}
}

// Permanent failures are marked SkipRetry so asynq archives them at once.
func TestPermanentFailures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := map[string]func() error{
		"undecodable payload": func() error {
			return b.mux.ProcessTask(context.Background(), asynq.NewTask((tasks.PDFRender{}).Kind(), []byte("{not json")))
		},
		"missing event": func() error { return run(t, b.mux, tasks.EventDispatch{EventID: 987654}) },
		"missing order": func() error {
			return run(t, b.mux, tasks.PDFRender{TenantID: 1, DocKind: store.DocPurchaseOrder, SubjectID: 987654, Version: 1})
		},
		"unknown document kind": func() error {
			return run(t, b.mux, tasks.PDFRender{TenantID: 1, DocKind: "poem", SubjectID: 1, Version: 1})
		},
	}
	for name, fn := range cases {
		err := fn()
		if err == nil || !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("%s: err = %v, want a SkipRetry error", name, err)
		}
	}
}

// A cancelled task context stops the render and stores nothing.
func TestRenderHonoursCancellation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ten := storetest.Tenant(t, b.db, "acme")
	v := storetest.Vendor(t, b.db, ten.ID, "Slow Co")
	po := storetest.PurchaseOrder(t, b.db, ten.ID, v.ID, 50)
	task, err := tasks.New(tasks.PDFRender{TenantID: ten.ID, DocKind: store.DocPurchaseOrder, SubjectID: po.Order.ID, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.mux.ProcessTask(ctx, task); err == nil {
		t.Fatal("cancelled render succeeded")
	}
	if n, _ := store.CountDocuments(context.Background(), b.db, ten.ID, store.DocPurchaseOrder, po.Order.ID); n != 0 {
		t.Errorf("cancelled render recorded %d documents", n)
	}
}
