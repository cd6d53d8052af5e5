package bench

import (
	"mime"
	"net/http"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

// The receiver matches webhooks by the order number in their body and
// emails by the number in their (possibly encoded) subject, keeping the
// first arrival and counting repeated webhook-ids.
func TestE2EReceiverMatchesOrders(t *testing.T) {
	r, err := startE2EReceiver()
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()

	hook := func(id, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", r.hookURL, strings.NewReader(body))
		req.Header.Set("webhook-id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("webhook answered %d", resp.StatusCode)
		}
	}
	hook("msg_1", `{"type":"purchase_order.created","timestamp":"2026-01-01T00:00:00Z","data":{"id":42,"number":"PO-000042"}}`)
	first, _, _ := r.arrivals("PO-000042")
	hook("msg_1", `{"type":"purchase_order.created","data":{"number":"PO-000042"}}`) // a redelivery
	hook("msg_2", `not json`)

	mail := func(subject string) {
		t.Helper()
		msg := "From: iacc <no-reply@localhost>\r\nTo: orders@vendor.test\r\nSubject: " + subject + "\r\n\r\nHello.\r\n"
		if err := smtp.SendMail(r.smtpAddr, nil, "no-reply@localhost", []string{"orders@vendor.test"}, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	mail(mime.QEncoding.Encode("utf-8", "Purchase order PO-000042 from Müller & Söhne"))
	mail("New purchase order PO-000042 to Vendor 01 (EUR 125.50)")
	mail("Something else")

	h, v, in := r.arrivals("PO-000042")
	if h.IsZero() || v.IsZero() || in.IsZero() {
		t.Fatalf("arrivals of PO-000042: webhook %v, vendor %v, accounting %v", h, v, in)
	}
	if !h.Equal(first) {
		t.Errorf("the redelivery replaced the first arrival")
	}
	if h, v, in := r.arrivals("PO-000043"); !h.IsZero() || !v.IsZero() || !in.IsZero() {
		t.Errorf("PO-000043 never sent, got %v %v %v", h, v, in)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hookIDs["msg_1"] != 2 || r.badHooks != 1 || r.other != 1 {
		t.Errorf("hookIDs %v, bad %d, other emails %d; want msg_1 twice, 1 bad, 1 other", r.hookIDs, r.badHooks, r.other)
	}
}

func TestDrainWatchCountsWhatIsMissingAndKeepsTheLatestArrival(t *testing.T) {
	r := &e2eReceiver{hooks: map[string]time.Time{}, vendor: map[string]time.Time{}, internal: map[string]time.Time{}}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := newDrainWatch([]string{"PO-1", "PO-2", "PO-3"})

	poll := func(wantHooks, wantVendor, wantInternal int, wantLast time.Time, wantWaiting int) {
		t.Helper()
		h, v, in, last := w.poll(r)
		if h != wantHooks || v != wantVendor || in != wantInternal || !last.Equal(wantLast) {
			t.Errorf("poll: missing %d webhooks, %d vendor, %d accounting, last %v; want %d, %d, %d, %v",
				h, v, in, last, wantHooks, wantVendor, wantInternal, wantLast)
		}
		if len(w.waiting) != wantWaiting {
			t.Errorf("%d orders still watched %v, want %d", len(w.waiting), w.waiting, wantWaiting)
		}
	}
	poll(3, 3, 3, time.Time{}, 3)

	r.hooks["PO-1"], r.vendor["PO-1"], r.internal["PO-1"] = at(5), at(9), at(7)
	r.hooks["PO-2"] = at(3)
	poll(1, 2, 2, at(9), 2) // PO-1 is complete and leaves the watch

	// PO-1's times are no longer read; the latest arrival stays its 9 s.
	r.vendor["PO-2"], r.internal["PO-2"] = at(4), at(6)
	r.hooks["PO-3"], r.vendor["PO-3"], r.internal["PO-3"] = at(8), at(8), at(8)
	poll(0, 0, 0, at(9), 0)

	r.hooks["PO-4"] = at(20) // an order that is not watched changes nothing
	poll(0, 0, 0, at(9), 0)
}

func TestSQLQuote(t *testing.T) {
	for in, want := range map[string]string{`O'Brien`: `O''Brien`, `a\b`: `a\\b`, "Müller": "Müller"} {
		if got := sqlQuote(in); got != want {
			t.Errorf("sqlQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// The backlog grows when the last tenth of the orders waits longer for an
// effect than the first tenth, by more than the limit.
func TestBacklogGrowthComparesTheTenthsMedians(t *testing.T) {
	ms := func(v ...int) latencies {
		l := make(latencies, len(v))
		for i, x := range v {
			l[i] = time.Duration(x) * time.Millisecond
		}
		l.sort()
		return l
	}
	for _, c := range []struct {
		name        string
		first, last latencies
		grew        time.Duration
		ok          bool
	}{
		{"steady", ms(40, 50, 60), ms(45, 49, 70), -time.Millisecond, true},
		{"within the limit", ms(100, 200, 300), ms(900, 1200, 5000), time.Second, true},
		{"growing", ms(1000, 1500, 2000), ms(7000, 7800, 9000), 6300 * time.Millisecond, false},
		{"no last tenth", ms(40), nil, 0, false},
		{"no first tenth", nil, ms(40), 0, false},
	} {
		grew, ok := backlogGrowth(c.first, c.last)
		if grew != c.grew || ok != c.ok {
			t.Errorf("%s: backlogGrowth = %v, %v; want %v, %v", c.name, grew, ok, c.grew, c.ok)
		}
	}
}

func TestE2ECapacityCountsEveryProcessAndTheHarness(t *testing.T) {
	// 40 s of load and drain, 8,000 orders, on 2 cores: iacc 0.8 cores,
	// MariaDB 0.7, Redis 0.1, the harness 0.2, the rest 0.05: 1.85 in all.
	m := map[string]float64{"cpu_iacc_cores": 0.8, "cpu_db_cores": 0.7, "cpu_redis_cores": 0.1, "cpu_bench_cores": 0.2, "cpu_other_cores": 0.05,
		"cpu_total_cores": 1.85}
	c := e2eCapacityFrom(m, 40, 8000, 2)
	near := func(name string, got, want float64) {
		t.Helper()
		if got < want-1e-9 || got > want+1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("iacc ms/order", c.IaccMS, 4)
	near("db ms/order", c.DBMS, 3.5)
	near("redis ms/order", c.RedisMS, 0.5)
	near("harness ms/order", c.HarnessMS, 1)
	near("ms/order", c.PerOrderMS, 8)
	near("orders/s", c.Orders, 250)                                  // 2 cores / 8 ms
	near("orders/s with the harness", c.OrdersWithHarness, 2000.0/9) // 2 cores / 9 ms
	near("busy", c.Busy, 0.925)

	if z := e2eCapacityFrom(map[string]float64{}, 40, 8000, 2); z.Orders != 0 || z.OrdersWithHarness != 0 {
		t.Errorf("no CPU measured: capacity %+v, want none", z)
	}
}
