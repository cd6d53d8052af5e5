package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker/accounting"
	"github.com/iacc/iacc/worker/email"
)

// Count is expected/seen/duplicates/resent of one kind of effect.
type Count struct {
	Expected, Seen, Dups, Resent, Raw int
}

func (c Count) String() string {
	s := fmt.Sprintf("%d/%d", c.Seen, c.Expected)
	if c.Dups > 0 {
		s += fmt.Sprintf(" dup %d", c.Dups)
	}
	if c.Raw > 0 {
		s += fmt.Sprintf(" (raw %d", c.Raw)
		if c.Resent > 0 {
			s += fmt.Sprintf(", resent %d", c.Resent)
		}
		s += ")"
	}
	return s
}

// Tally is what MySQL and the partners hold about the tenant's orders.
type Tally struct {
	Orders  int
	Events  int // purchase_order.created events
	Kinds   map[string]*Count
	Missing []string // the first few lost effects
	Extra   []string // the first few duplicates
	// LastEffect is the latest time an expected effect was seen (partners'
	// receipt times; documents' created_at).
	LastEffect time.Time
}

// Totals sums the kinds.
func (t Tally) Totals() (expected, seen, dups, resent int) {
	for _, c := range t.Kinds {
		expected += c.Expected
		seen += c.Seen
		dups += c.Dups
		resent += c.Resent
	}
	return
}

// Lost is the number of expected effects not seen.
func (t Tally) Lost() int {
	e, s, _, _ := t.Totals()
	return e - s
}

// Complete reports whether every expected effect was seen.
func (t Tally) Complete() bool { return t.Events > 0 && t.Lost() == 0 }

// Summary is a one-line description per kind.
func (t Tally) Summary() string {
	keys := make([]string, 0, len(t.Kinds))
	for k := range t.Kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" "+t.Kinds[k].String())
	}
	return strings.Join(parts, "; ")
}

type orderRow struct {
	id, vendor, event int64
	vendorEmail       string
}

// Tally counts the effects of every committed purchase order of the tenant.
func (e *Env) Tally(ctx context.Context) (Tally, error) {
	t := Tally{Kinds: map[string]*Count{}}
	kind := func(k string) *Count {
		c, ok := t.Kinds[k]
		if !ok {
			c = &Count{}
			t.Kinds[k] = c
		}
		return c
	}
	rows, err := e.DB.QueryContext(ctx, `SELECT o.id, o.vendor_id, v.email, COALESCE(MIN(ev.id), 0)
		FROM purchase_orders o JOIN vendors v ON v.id = o.vendor_id
		LEFT JOIN outbox_events ev ON ev.aggregate_type = 'purchase_order' AND ev.aggregate_id = o.id AND ev.event_type = ?
		WHERE o.tenant_id = ? GROUP BY o.id, o.vendor_id, v.email ORDER BY o.id`, store.EventPurchaseOrderCreated, e.TenantID)
	if err != nil {
		return t, fmt.Errorf("tally orders: %w", err)
	}
	var orders []orderRow
	for rows.Next() {
		var o orderRow
		if err := rows.Scan(&o.id, &o.vendor, &o.vendorEmail, &o.event); err != nil {
			rows.Close()
			return t, err
		}
		orders = append(orders, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t, err
	}
	t.Orders = len(orders)
	miss := func(s string) {
		if len(t.Missing) < 5 {
			t.Missing = append(t.Missing, s)
		}
	}
	extra := func(s string) {
		if len(t.Extra) < 5 {
			t.Extra = append(t.Extra, s)
		}
	}
	seenAt := func(at time.Time) {
		if at.After(t.LastEffect) {
			t.LastEffect = at
		}
	}

	// PDFs: one documents row per order (version 1).
	docs := map[int64]int{}
	docAt := map[int64]time.Time{}
	rows, err = e.DB.QueryContext(ctx, `SELECT subject_id, COUNT(*), MAX(created_at) FROM documents WHERE tenant_id = ? AND kind = ? GROUP BY subject_id`,
		e.TenantID, store.DocPurchaseOrder)
	if err != nil {
		return t, fmt.Errorf("tally documents: %w", err)
	}
	for rows.Next() {
		var id int64
		var n int
		var at time.Time
		if err := rows.Scan(&id, &n, &at); err != nil {
			rows.Close()
			return t, err
		}
		docs[id], docAt[id] = n, at
	}
	rows.Close()

	sink := smtpStats(e.SMTP)
	acctDocs := map[string]int{}
	for _, d := range e.Accounting.Documents(e.TenantID, "purchase-orders") {
		acctDocs[d.SourceID]++
	}
	acctCreated := map[string]time.Time{}
	for _, d := range e.Accounting.Documents(e.TenantID, "purchase-orders") {
		acctCreated[d.SourceID] = d.CreatedAt
	}
	hooks := make([]ReceiverStats, len(e.Endpoints))
	for i, ep := range e.Endpoints {
		hooks[i] = ep.Receiver.Stats()
	}

	expectedMail := map[string]bool{}
	expectedAcct := map[string]bool{}
	expectedHook := make([]map[string]bool, len(e.Endpoints))
	for i := range expectedHook {
		expectedHook[i] = map[string]bool{}
	}
	for _, o := range orders {
		if o.event == 0 {
			miss(fmt.Sprintf("order %d has no outbox event", o.id))
			continue
		}
		t.Events++
		// PDF
		c := kind("pdf")
		c.Expected++
		if n := docs[o.id]; n > 0 {
			c.Seen++
			c.Dups += n - 1
			seenAt(docAt[o.id])
		} else {
			miss(fmt.Sprintf("PDF of order %d", o.id))
		}
		// Emails: the vendor's, and the notifications to accounting and management.
		c = kind("email")
		for _, m := range []struct{ tpl, to string }{
			{tasks.EmailPurchaseOrderVendor, o.vendorEmail},
			{tasks.EmailPurchaseOrderCreated, accountingAddr},
			{tasks.EmailPurchaseOrderCreated, managementAddr},
		} {
			key := tasks.EmailSend{EventID: o.event, Template: m.tpl, To: store.NormalizeEmailAddress(m.to)}.DedupeKey()
			id := email.MessageID(e.TenantID, key, mailDomain)
			expectedMail[id] = true
			c.Expected++
			if n := sink.ByID[id]; n > 0 {
				c.Seen++
				c.Resent += n - 1
			} else {
				miss(fmt.Sprintf("email %s to %s of order %d", m.tpl, m.to, o.id))
			}
		}
		// Accounting: one document at the partner.
		c = kind("accounting")
		src := accounting.SourceID(store.AccountingPurchaseOrder, o.id)
		expectedAcct[src] = true
		c.Expected++
		if n := acctDocs[src]; n > 0 {
			c.Seen++
			c.Dups += n - 1
			seenAt(acctCreated[src])
		} else {
			miss(fmt.Sprintf("accounting document of order %d", o.id))
		}
		// Webhooks: one processed delivery per endpoint.
		for i, ep := range e.Endpoints {
			c = kind("hook:" + ep.Receiver.Name)
			id := store.WebhookMsgID(o.event, ep.ID)
			expectedHook[i][id] = true
			c.Expected++
			if at, ok := hooks[i].Processed[id]; ok {
				c.Seen++
				c.Resent += hooks[i].OKCount[id] - 1
				seenAt(at)
			} else {
				miss(fmt.Sprintf("webhook %s to %s", id, ep.Receiver.Name))
			}
		}
	}
	// Anything at the partners that no order explains is a duplicate effect.
	c := kind("email")
	c.Raw = sink.Raw
	for id, n := range sink.ByID {
		if !expectedMail[id] {
			c.Dups += n
			extra(fmt.Sprintf("unexpected email %s (%q)", id, sink.Subjects[id]))
		}
	}
	if sink.NoID > 0 {
		c.Dups += sink.NoID
		extra(fmt.Sprintf("%d emails without a Message-ID", sink.NoID))
	}
	c = kind("accounting")
	for src, n := range acctDocs {
		if !expectedAcct[src] {
			c.Dups += n
			extra("unexpected accounting document " + src)
		} else if n > 1 {
			extra(fmt.Sprintf("accounting document %s ×%d", src, n))
		}
	}
	for i, ep := range e.Endpoints {
		c = kind("hook:" + ep.Receiver.Name)
		c.Raw = hooks[i].Raw
		for id := range hooks[i].Processed {
			if !expectedHook[i][id] {
				c.Dups++
				extra(fmt.Sprintf("unexpected webhook-id %s at %s", id, ep.Receiver.Name))
			}
		}
		if hooks[i].BadSig > 0 {
			c.Dups += hooks[i].BadSig
			extra(fmt.Sprintf("%d webhook requests with a bad signature at %s", hooks[i].BadSig, ep.Receiver.Name))
		}
	}
	for id, n := range docs {
		if n > 1 {
			extra(fmt.Sprintf("order %d has %d PDF document rows", id, n))
		}
	}
	return t, nil
}

// WaitComplete polls the tally until every expected effect is seen and the
// outbox is drained, or within passes. It returns the last tally.
func (e *Env) WaitComplete(ctx context.Context, within time.Duration) (Tally, error) {
	var last Tally
	lastSeen, progressAt := -1, time.Now()
	err := pollUntil(ctx, within, 250*time.Millisecond, "every effect of every committed order", func() (bool, error) {
		t, err := e.Tally(ctx)
		if err != nil {
			e.Logf("tally: %v", err) // MySQL may be cut: try again
			return false, nil
		}
		last = t
		if t.Complete() {
			return true, nil
		}
		// Give up early when the system has stopped working on it: no
		// progress for a while, no task anywhere in Redis, no event waiting
		// in the outbox. What is missing then is lost, not late.
		if _, seen, _, _ := t.Totals(); seen != lastSeen {
			lastSeen, progressAt = seen, time.Now()
			return false, nil
		}
		if time.Since(progressAt) < stallAfter {
			return false, nil
		}
		if work, err := e.queuedWork(ctx); err == nil && work == 0 {
			return false, fmt.Errorf("stalled: no progress for %s, no task queued, running, scheduled or retrying in Redis and no unpublished event: %d effects lost (%s); missing e.g. %s",
				stallAfter, t.Lost(), t.Summary(), strings.Join(t.Missing, ", "))
		}
		return false, nil
	})
	if err != nil {
		exp, seen, _, _ := last.Totals()
		return last, fmt.Errorf("%w: %d of %d effects seen (%s); missing e.g. %s", err, seen, exp, last.Summary(), strings.Join(last.Missing, ", "))
	}
	return last, nil
}

// stallAfter is how long WaitComplete waits without progress before it
// looks for queued work (and gives up when there is none).
const stallAfter = 20 * time.Second

// queuedWork counts tasks pending, active, scheduled or retrying in every
// queue, plus unpublished outbox events.
func (e *Env) queuedWork(ctx context.Context) (int, error) {
	n := 0
	for q := range tasks.Queues() {
		info, err := e.Inspector.GetQueueInfo(q)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += info.Pending + info.Active + info.Scheduled + info.Retry + info.Aggregating
	}
	var unpublished int
	if err := e.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL`).Scan(&unpublished); err != nil {
		return 0, err
	}
	return n + unpublished, nil
}

// Integrity checks that no order is half-written: each has its items (and
// its total is their sum), its audit row and exactly one created event;
// each vendor's balance is the sum of its orders; every outbox event is
// published and dispatched.
func (e *Env) Integrity(ctx context.Context) []string {
	var problems []string
	q := func(what, query string, args ...any) {
		var n int
		if err := e.DB.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
			return
		}
		if n != 0 {
			problems = append(problems, fmt.Sprintf("%d %s", n, what))
		}
	}
	q("orders without items", `SELECT COUNT(*) FROM purchase_orders o WHERE o.tenant_id = ? AND NOT EXISTS
		(SELECT 1 FROM purchase_order_items i WHERE i.purchase_order_id = o.id)`, e.TenantID)
	q("orders whose total is not the sum of their items", `SELECT COUNT(*) FROM purchase_orders o WHERE o.tenant_id = ? AND o.total_amount <>
		(SELECT COALESCE(SUM(i.line_total), 0) FROM purchase_order_items i WHERE i.purchase_order_id = o.id)`, e.TenantID)
	q("orders without an audit row", `SELECT COUNT(*) FROM purchase_orders o WHERE o.tenant_id = ? AND NOT EXISTS
		(SELECT 1 FROM audit_log a WHERE a.tenant_id = o.tenant_id AND a.entity_type = 'purchase_order' AND a.entity_id = o.id)`, e.TenantID)
	q("orders without exactly one created event", `SELECT COUNT(*) FROM purchase_orders o WHERE o.tenant_id = ? AND 1 <>
		(SELECT COUNT(*) FROM outbox_events ev WHERE ev.aggregate_type = 'purchase_order' AND ev.aggregate_id = o.id AND ev.event_type = ?)`,
		e.TenantID, store.EventPurchaseOrderCreated)
	q("created events without their order", `SELECT COUNT(*) FROM outbox_events ev WHERE ev.tenant_id = ? AND ev.event_type = ? AND NOT EXISTS
		(SELECT 1 FROM purchase_orders o WHERE o.id = ev.aggregate_id)`, e.TenantID, store.EventPurchaseOrderCreated)
	q("outbox events not published or not dispatched", `SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL OR dispatched_at IS NULL`)

	rows, err := e.DB.QueryContext(ctx, `SELECT v.id, v.balance, COALESCE((SELECT SUM(o.total_amount) FROM purchase_orders o WHERE o.vendor_id = v.id), 0)
		FROM vendors v WHERE v.tenant_id = ?`, e.TenantID)
	if err != nil {
		return append(problems, "vendor balances: "+err.Error())
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var bal, sum decimal.Decimal
		if err := rows.Scan(&id, &bal, &sum); err != nil {
			return append(problems, "vendor balances: "+err.Error())
		}
		if !bal.Equal(sum) {
			problems = append(problems, fmt.Sprintf("vendor %d balance %s ≠ sum of its orders %s", id, bal.StringFixed(2), sum.StringFixed(2)))
		}
	}
	return problems
}

// TaskRuns are the task executions the children logged ("task processed").
type TaskRuns struct {
	OK     map[string]int    // task_id → successful runs
	Failed map[string]int    // task_id → failed runs
	Type   map[string]string // task_id → type
}

// Reruns counts successful runs beyond the first, per task type.
func (r TaskRuns) Reruns() map[string]int {
	out := map[string]int{}
	for id, n := range r.OK {
		if n > 1 {
			out[r.Type[id]] += n - 1
		}
	}
	return out
}

// RerunSummary is "type×n, …" or "none".
func (r TaskRuns) RerunSummary() string {
	rr := r.Reruns()
	if len(rr) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(rr))
	for k := range rr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, rr[k]))
	}
	return strings.Join(parts, ", ")
}

// ReadTaskRuns parses every child's log of the scenario.
func (e *Env) ReadTaskRuns() (TaskRuns, error) {
	r := TaskRuns{OK: map[string]int{}, Failed: map[string]int{}, Type: map[string]string{}}
	files, err := filepath.Glob(filepath.Join(e.Dir, "*.log"))
	if err != nil {
		return r, err
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "suite.log" || strings.HasPrefix(base, "cli-") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return r, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			line := sc.Bytes()
			if !strings.Contains(string(line), `"task processed"`) {
				continue
			}
			var rec struct {
				Msg  string          `json:"msg"`
				Type string          `json:"task_type"`
				ID   string          `json:"task_id"`
				Err  json.RawMessage `json:"err"`
			}
			if json.Unmarshal(line, &rec) != nil || rec.Msg != "task processed" {
				continue
			}
			r.Type[rec.ID] = rec.Type
			if len(rec.Err) == 0 || string(rec.Err) == "null" {
				r.OK[rec.ID]++
			} else {
				r.Failed[rec.ID]++
			}
		}
		fh.Close()
	}
	return r, nil
}
