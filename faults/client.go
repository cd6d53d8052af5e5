package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// API talks to one iacc API process.
type API struct {
	Base  string
	Token string
	hc    *http.Client
}

// NewAPI returns a client of the API at addr (host:port).
func NewAPI(addr string) *API {
	return &API{Base: "http://" + addr, hc: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}}}
}

// WithToken returns a client of another API process with the same token.
func (a *API) Other(addr string) *API {
	b := NewAPI(addr)
	b.Token = a.Token
	return b
}

// Response is an API answer.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
	Latency     time.Duration
	Err         error
}

// Do sends a JSON request.
func (a *API) Do(ctx context.Context, method, path string, body any) Response {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Response{Err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, rd)
	if err != nil {
		return Response{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	start := time.Now()
	resp, err := a.hc.Do(req)
	if err != nil {
		return Response{Err: err, Latency: time.Since(start)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: raw, Latency: time.Since(start), Err: err}
}

// must checks the status and decodes the body into out.
func (r Response) must(want int, out any) error {
	if r.Err != nil {
		return r.Err
	}
	if r.Status != want {
		return fmt.Errorf("status %d, want %d: %s", r.Status, want, truncate(string(r.Body), 300))
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return fmt.Errorf("decode %s: %w", truncate(string(r.Body), 200), err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Login gets an access token for the admin.
func (a *API) Login(ctx context.Context, email, password string) error {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := a.Do(ctx, "POST", "/auth/login", map[string]string{"email": email, "password": password}).must(http.StatusOK, &tok); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	a.Token = tok.AccessToken
	return nil
}

// orderBody is a purchase order of vendor v.
func orderBody(vendorID int64, n int) map[string]any {
	return map[string]any{
		"vendor_id": vendorID, "currency": "EUR", "notes": fmt.Sprintf("fault suite order %d", n),
		"items": []map[string]any{
			{"description": "A4 copy paper", "quantity": 3, "unit_price": "4.99"},
			{"description": "27-inch monitor", "quantity": "1", "unit_price": "219.00"},
		},
	}
}

// OrderResult is the outcome of one order request.
type OrderResult struct {
	Response
	Started time.Time
	ID      int64
}

// CreateOrder posts one purchase order.
func (a *API) CreateOrder(ctx context.Context, vendorID int64, n int) OrderResult {
	start := time.Now()
	r := a.Do(ctx, "POST", "/api/purchase-orders", orderBody(vendorID, n))
	res := OrderResult{Response: r, Started: start}
	if r.Err == nil && r.Status == http.StatusCreated {
		var po struct {
			ID int64 `json:"id"`
		}
		if json.Unmarshal(r.Body, &po) == nil {
			res.ID = po.ID
		}
	}
	return res
}

// Seed creates the vendors and webhook endpoints through the API.
func (e *Env) Seed(ctx context.Context, api *API) error {
	if err := api.Login(ctx, e.AdminEmail, adminPassword); err != nil {
		return err
	}
	for i := 0; i < e.cfg.Vendors; i++ {
		name := fmt.Sprintf("Vendor %c", 'A'+i)
		addr := fmt.Sprintf("vendor-%c@supplier.faults.test", 'a'+i)
		var v struct {
			ID int64 `json:"id"`
		}
		if err := api.Do(ctx, "POST", "/api/vendors", map[string]string{"name": name, "email": addr}).must(http.StatusCreated, &v); err != nil {
			return fmt.Errorf("create vendor: %w", err)
		}
		e.Vendors = append(e.Vendors, Vendor{ID: v.ID, Email: addr})
	}
	for i := range e.Endpoints {
		r := e.Endpoints[i].Receiver
		var w struct {
			ID     int64  `json:"id"`
			Secret string `json:"secret"`
		}
		err := api.Do(ctx, "POST", "/api/webhooks", map[string]any{"url": r.URL(), "event_types": []string{"purchase_order.created"},
			"description": "fault suite receiver " + r.Name}).must(http.StatusCreated, &w)
		if err != nil {
			return fmt.Errorf("create webhook endpoint %s: %w", r.Name, err)
		}
		r.SetSecret(w.Secret)
		e.Endpoints[i].ID = w.ID
	}
	e.Logf("seeded tenant %d: %d vendors, %d webhook endpoints", e.TenantID, len(e.Vendors), len(e.Endpoints))
	return nil
}

// Load records the orders a load generator sent.
type Load struct {
	mu      sync.Mutex
	results []OrderResult
	n       int
}

func (l *Load) add(r OrderResult) {
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

func (l *Load) next() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return l.n
}

// Results returns what was recorded so far.
func (l *Load) Results() []OrderResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]OrderResult(nil), l.results...)
}

// Burst creates n orders with conc concurrent clients, alternating vendors.
func (e *Env) Burst(ctx context.Context, api *API, n, conc int) (*Load, error) {
	l := &Load{}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				l.add(api.CreateOrder(ctx, e.Vendors[i%len(e.Vendors)].ID, i))
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case work <- l.next():
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	for _, r := range l.Results() {
		if r.Err != nil || r.Status != http.StatusCreated {
			return l, fmt.Errorf("order during the burst: status %d err %v: %s", r.Status, r.Err, truncate(string(r.Body), 200))
		}
	}
	return l, nil
}

// Pace sends orders at rate per second (open loop: a slow answer does not
// slow the sender; at most 256 in flight) until stop is closed or ctx
// ends, alternating over apis and vendors.
func (e *Env) Pace(ctx context.Context, apis []*API, rate float64, stop <-chan struct{}) *Load {
	l := &Load{}
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	t := time.NewTicker(interval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-stop:
			break loop
		case <-t.C:
		}
		i := l.next()
		select {
		case sem <- struct{}{}:
		default:
			l.add(OrderResult{Started: time.Now(), Response: Response{Err: fmt.Errorf("load generator: 256 requests in flight")}})
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			api := apis[i%len(apis)]
			l.add(api.CreateOrder(ctx, e.Vendors[i%len(e.Vendors)].ID, i))
		}(i)
	}
	wg.Wait()
	return l
}

// LoadSummary describes the answers of a load.
type LoadSummary struct {
	Total     int
	ByStatus  map[int]int
	Errors    int
	P50, P99  time.Duration
	Max       time.Duration
	FirstErrs []string
}

func (s LoadSummary) String() string {
	keys := make([]int, 0, len(s.ByStatus))
	for k := range s.ByStatus {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", s.ByStatus[k], k))
	}
	if s.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors", s.Errors))
	}
	return fmt.Sprintf("%d requests (%s), latency p50 %s p99 %s max %s", s.Total, strings.Join(parts, ", "),
		s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond), s.Max.Round(time.Millisecond))
}

// Summarize summarises results (optionally only those started in [from, to)).
func Summarize(rs []OrderResult, from, to time.Time) LoadSummary {
	s := LoadSummary{ByStatus: map[int]int{}}
	var lat []time.Duration
	for _, r := range rs {
		if (!from.IsZero() && r.Started.Before(from)) || (!to.IsZero() && !r.Started.Before(to)) {
			continue
		}
		s.Total++
		if r.Err != nil {
			s.Errors++
			if len(s.FirstErrs) < 3 {
				s.FirstErrs = append(s.FirstErrs, r.Err.Error())
			}
		} else {
			s.ByStatus[r.Status]++
		}
		lat = append(lat, r.Latency)
	}
	s.P50, s.P99, s.Max = percentiles(lat)
	return s
}

func percentiles(d []time.Duration) (p50, p99, mx time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.5) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return at(0.50), at(0.99), d[len(d)-1]
}
