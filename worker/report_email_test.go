package worker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker/pdf/pdftext"
	"github.com/iacc/iacc/worker/report"
)

// The nightly report reaches the tenant's management as one email with the
// PDF (rendered first: the email rides on the render) and the CSV attached.
func TestReportIsEmailedWithPDFAndCSV(t *testing.T) {
	t.Parallel()
	b := setupMail(t)
	ctx := context.Background()
	ten, err := store.CreateTenant(ctx, b.db, "Report Co "+t.Name(), store.TenantSettings{ManagementEmails: []string{"boss@report.test"}})
	if err != nil {
		t.Fatal(err)
	}
	v := storetest.Vendor(t, b.db, ten.ID, "Alpha Supplies")
	storetest.PurchaseOrder(t, b.db, ten.ID, v.ID, 3) // 63.00 today
	day := time.Now().UTC().Format(time.DateOnly)
	rep, err := report.New(b.db, b.blobs, b.client, time.UTC, nil).Build(ctx, ten.ID, day)
	if err != nil {
		t.Fatal(err)
	}
	var evID int64
	if err := b.db.QueryRow(`SELECT id FROM outbox_events WHERE event_type = ? AND aggregate_id = ?`, store.EventReportReady, rep.ID).Scan(&evID); err != nil {
		t.Fatal(err)
	}
	if err := b.mux.ProcessTask(ctx, mustTask(t, tasks.EventDispatch{EventID: evID})); err != nil {
		t.Fatal(err)
	}
	var render *asynq.TaskInfo
	for _, ti := range b.pending(t) {
		if ti.Type == (tasks.PDFRender{}).Kind() {
			render = ti
		} else if ti.Type == (tasks.EmailSend{}).Kind() {
			t.Fatalf("report email enqueued before its PDF: %s", ti.Payload)
		}
	}
	if render == nil {
		t.Fatal("no report render")
	}
	if err := b.process(render); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, ti := range b.pending(t) {
		if ti.Type == (tasks.EmailSend{}).Kind() {
			if err := b.process(ti); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("report emails processed = %d, want 1", sent)
	}
	msgs := b.srv.MessagesTo("boss@report.test")
	if len(msgs) != 1 {
		t.Fatalf("boss got %d emails", len(msgs))
	}
	files := attachments(t, msgs[0].Data)
	pdfBytes, csvBytes := files["report-"+day+".pdf"], files["report-"+day+".csv"]
	if pdfBytes == nil || csvBytes == nil {
		t.Fatalf("attachments = %v, want the PDF and the CSV", keys(files))
	}
	text, err := pdftext.Extract(pdfBytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{day, "Alpha Supplies", "63.00"} {
		if !strings.Contains(text, want) {
			t.Errorf("report PDF lacks %q", want)
		}
	}
	recs, err := csv.NewReader(bytes.NewReader(csvBytes)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("report CSV: %v %q", err, csvBytes)
	}
}

func mustTask(t *testing.T, p tasks.Payload) *asynq.Task {
	t.Helper()
	task, err := tasks.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// attachments returns the message's attachments by filename.
func attachments(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(ct string, body io.Reader)
	walk = func(ct string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !strings.HasPrefix(mt, "multipart/") {
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			if name := p.FileName(); name != "" {
				data, _ := io.ReadAll(decodePart(p))
				out[name] = data
				continue
			}
			walk(p.Header.Get("Content-Type"), p)
		}
	}
	walk(msg.Header.Get("Content-Type"), msg.Body)
	return out
}

// decodePart undoes a part's base64 transfer encoding.
func decodePart(p *multipart.Part) io.Reader {
	b, _ := io.ReadAll(p)
	if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
		dec, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
		if err == nil {
			return bytes.NewReader(dec)
		}
	}
	return bytes.NewReader(b)
}
