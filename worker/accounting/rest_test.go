package accounting_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/worker/accounting"
	"github.com/iacc/iacc/worker/accounting/accountingtest"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func TestNewRESTChecksItsConfiguration(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, token string }{
		{"", "t"}, {"ftp://ledger.example", "t"}, {"https://", "t"}, {"ledger.example.com", "t"},
		{"https://user:pw@ledger.example", "t"}, {"https://ledger.example?token=x", "t"}, {"https://ledger.example", " "},
	} {
		if _, err := accounting.NewREST(accounting.RESTConfig{BaseURL: c.url, Token: c.token}); err == nil {
			t.Errorf("NewREST(%q, %q) accepted", c.url, c.token)
		}
	}
	if _, err := accounting.NewREST(accounting.RESTConfig{BaseURL: "https://ledger.example.com/api/", Token: "t"}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"999999", time.Hour, true}, // capped
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"", 0, false}, {"-5", 0, false}, {"soon", 0, false}, {"1.5", 0, false},
	} {
		got, ok := accounting.ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestIdempotencyKeyIsStablePerRequest(t *testing.T) {
	t.Parallel()
	k := accounting.IdempotencyKey(1, "purchase_order", 42, 2, accounting.OpCreate)
	if k != accounting.IdempotencyKey(1, "purchase_order", 42, 2, accounting.OpCreate) {
		t.Fatal("the key changes between calls")
	}
	if len(k) != 37 || k[:5] != "iacc-" {
		t.Errorf("key %q", k)
	}
	seen := map[string]bool{k: true}
	for _, other := range []string{
		accounting.IdempotencyKey(2, "purchase_order", 42, 2, accounting.OpCreate),
		accounting.IdempotencyKey(1, "invoice", 42, 2, accounting.OpCreate),
		accounting.IdempotencyKey(1, "purchase_order", 43, 2, accounting.OpCreate),
		accounting.IdempotencyKey(1, "purchase_order", 42, 3, accounting.OpCreate),
		accounting.IdempotencyKey(1, "purchase_order", 42, 2, accounting.OpUpdate),
	} {
		if seen[other] {
			t.Errorf("key %s repeats", other)
		}
		seen[other] = true
	}
}

func TestValidExternalID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{"po_1": true, "A-b.c~d:9": true, "": false, ".": false, "..": false, "a/b": false, "a b": false, "é": false} {
		if got := accounting.ValidExternalID(id); got != want {
			t.Errorf("ValidExternalID(%q) = %v", id, got)
		}
	}
}

// How the REST connector reads the partner's answers.
func TestRESTClassifiesAnswers(t *testing.T) {
	t.Parallel()
	partner := accountingtest.New(t)
	conn, err := accounting.NewREST(accounting.RESTConfig{BaseURL: partner.URL() + "/", Token: partner.Token(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	doc := accounting.Bill{SourceID: "invoice:1", Version: 1, Number: "INV-000001", PurchaseOrderSourceID: "purchase_order:1",
		Vendor: accounting.Vendor{SourceID: "vendor:1", Name: "V"}, Currency: "EUR", Amount: "10.00", IssuedAt: "2030-01-01T00:00:00Z", DueDate: "2030-02-01"}
	push := func(externalID, key string) (accounting.Response, *accounting.PartnerError) {
		resp, err := conn.Push(context.Background(), accounting.Request{TenantID: 5, Doc: doc, ExternalID: externalID, IdempotencyKey: key})
		if err == nil {
			return resp, nil
		}
		var pe *accounting.PartnerError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *PartnerError", err)
		}
		return resp, pe
	}
	for _, c := range []struct {
		name   string
		answer accountingtest.Answer
		update bool
		kind   accounting.Kind
		retry  time.Duration
	}{
		{"400", accountingtest.Answer{Status: 400, Body: `{"detail":"bad json"}`}, false, accounting.Rejected, 0},
		{"422 with field errors", accountingtest.Answer{Status: 422, Body: `{"detail":"invalid","errors":[{"field":"amount","message":"too big"}]}`}, false, accounting.Rejected, 0},
		{"404 on update", accountingtest.Answer{Status: 404}, true, accounting.Rejected, 0},
		{"404 on create (wrong URL)", accountingtest.Answer{Status: 404}, false, accounting.Transient, 0},
		{"409 in progress", accountingtest.Answer{Status: 409, Body: `{"detail":"in progress"}`, RetryAfter: "2"}, false, accounting.Transient, 2 * time.Second},
		{"409 exists", accountingtest.Answer{Status: 409, Body: `{"existing_id":"bill_7"}`}, false, accounting.Exists, 0},
		{"403", accountingtest.Answer{Status: 403}, false, accounting.Transient, 0},
		{"408", accountingtest.Answer{Status: 408}, false, accounting.Transient, 0},
		{"429 without Retry-After", accountingtest.Answer{Status: 429}, false, accounting.RateLimited, 5 * time.Second},
		{"503 with Retry-After", accountingtest.Answer{Status: 503, RetryAfter: "7", Body: "<html>maintenance</html>"}, false, accounting.Transient, 7 * time.Second},
		{"2xx without id", accountingtest.Answer{Status: 201, Body: `{}`}, false, accounting.Transient, 0},
		{"2xx with a path-breaking id", accountingtest.Answer{Status: 201, Body: `{"id":"../x"}`}, false, accounting.Rejected, 0},
		{"redirect", accountingtest.Answer{Status: 307}, false, accounting.Transient, 0},
	} {
		partner.Script(c.answer)
		ext := ""
		if c.update {
			ext = "bill_1"
		}
		_, pe := push(ext, "k-"+c.name)
		if pe == nil || pe.Kind != c.kind || pe.RetryAfter != c.retry || pe.Status != c.answer.Status {
			t.Errorf("%s: error %+v, want kind %v retry %v", c.name, pe, c.kind, c.retry)
		}
		if c.name == "409 exists" && pe != nil && pe.ExistingID != "bill_7" {
			t.Errorf("409 exists: existing id %q", pe.ExistingID)
		}
		if c.name == "422 with field errors" && pe != nil && pe.Message != "invalid (amount: too big)" {
			t.Errorf("422 message %q", pe.Message)
		}
	}
	// Normal processing: created, then replayed with the same key.
	r1, pe := push("", "k-create")
	if pe != nil || r1.Status != 201 || r1.Replayed {
		t.Fatalf("create: %+v %v", r1, pe)
	}
	r2, pe := push("", "k-create")
	if pe != nil || r2.ExternalID != r1.ExternalID || !r2.Replayed {
		t.Fatalf("replay: %+v %v", r2, pe)
	}
	// The path is BaseURL/v1/tenants/{tenant}/bills whatever the trailing slash.
	reqs := partner.Requests()
	if last := reqs[len(reqs)-1]; last.Path != "/v1/tenants/5/bills" {
		t.Errorf("path %s", last.Path)
	}
	// A hang beyond the timeout is a transient failure with no status.
	partner.Script(accountingtest.Answer{Hang: true})
	if _, pe := push("", "k-hang"); pe == nil || pe.Kind != accounting.Transient || pe.Status != 0 {
		t.Errorf("hang: %+v", pe)
	}
}

// The limiter lets PerSecond requests of a tenant through per window and
// then says how long to wait; tenants have separate budgets; a nil limiter
// allows everything.
func TestLimiter(t *testing.T) {
	t.Parallel()
	rdb := storetest.NewRedis(t)
	ctx := context.Background()
	var none *accounting.Limiter
	if d, err := none.Allow(ctx, 1); d != 0 || err != nil {
		t.Fatalf("nil limiter: %v %v", d, err)
	}
	if accounting.NewLimiter(nil, 5) != nil {
		t.Fatal("a limiter without Redis is not nil")
	}
	// Without a rate, everything goes, except while the tenant is paused.
	unlimited := accounting.NewLimiter(rdb.Client, 0)
	for range 20 {
		if d, err := unlimited.Allow(ctx, 3); d != 0 || err != nil {
			t.Fatalf("no rate: wait %v, %v", d, err)
		}
	}
	if err := unlimited.Pause(ctx, 3, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d, _ := unlimited.Allow(ctx, 3); d < 4*time.Second || d > 5*time.Second {
		t.Errorf("no rate, paused: wait %v", d)
	}
	l := accounting.NewLimiter(rdb.Client, 3)
	start := time.Now()
	for i := range 3 {
		if d, err := l.Allow(ctx, 1); d != 0 || err != nil {
			t.Fatalf("request %d: wait %v, %v", i+1, d, err)
		}
	}
	d, err := l.Allow(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second && (d <= 0 || d > time.Second+accounting.Headroom) {
		t.Errorf("fourth request waits %v", d)
	}
	if d, err := l.Allow(ctx, 2); d != 0 || err != nil {
		t.Errorf("another tenant waits %v, %v", d, err)
	}
	if err := l.Pause(ctx, 2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Allow(ctx, 2); d < 9*time.Second || d > 10*time.Second {
		t.Errorf("paused tenant waits %v", d)
	}
}
