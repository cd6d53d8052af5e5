package accountingtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultToken is the bearer token the partner accepts unless WithToken says otherwise.
const DefaultToken = "test-accounting-token-s3cr3t"

// Collections of the protocol and the prefix of their ids.
var collections = map[string]string{"purchase-orders": "po_", "bills": "bill_", "payments": "pay_"}

// Answer is a scripted answer to one request.
type Answer struct {
	Status     int
	RetryAfter string // Retry-After header value, if any
	Body       string // answer body (problem+json when it starts with '{')
	// Hang never answers: the request waits until the client gives up.
	Hang bool
	// ApplyThenHang processes the request normally (storing the document and
	// the idempotency record) and then never answers: the answer is lost.
	ApplyThenHang bool
}

// Request is one request the partner received.
type Request struct {
	Method         string
	Path           string
	Tenant         string
	Collection     string
	ID             string // PUT/GET: the document id in the path
	IdempotencyKey string
	Authorized     bool
	Arrived        time.Time
	Status         int  // the answer given (0: none, the request hung)
	Replayed       bool // answered from the idempotency record
	Scripted       bool // answered from the script
	Body           []byte
}

// Document is a stored document.
type Document struct {
	ID         string
	Tenant     string
	Collection string
	SourceID   string
	Version    int
	Body       map[string]any // the last applied request body
	Updates    int            // applied updates after the create
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

type sourceKey struct{ tenant, collection, source string }

type idemKey struct{ tenant, key string }

type idemRecord struct {
	method, path string
	status       int
	body         []byte
}

// Partner is the fake accounting partner.
type Partner struct {
	srv      *httptest.Server
	token    string
	perSec   int
	closed   chan struct{}
	mu       sync.Mutex
	changed  chan struct{}
	nextID   int
	docs     map[string]*Document
	bySource map[sourceKey]string
	idem     map[idemKey]idemRecord
	script   []Answer
	requests []Request
	arrivals map[string][]time.Time // per tenant, for the rate limit
}

// Option configures a Partner.
type Option func(*Partner)

// WithToken sets the accepted bearer token.
func WithToken(token string) Option { return func(p *Partner) { p.token = token } }

// WithRateLimit makes the partner answer 429 (Retry-After: 1) to a
// tenant's request when perSecond requests of that tenant arrived in the
// last second.
func WithRateLimit(perSecond int) Option { return func(p *Partner) { p.perSec = perSecond } }

// New starts a partner; it stops when the test ends.
func New(t testing.TB, opts ...Option) *Partner {
	t.Helper()
	p := &Partner{token: DefaultToken, closed: make(chan struct{}), changed: make(chan struct{}),
		docs: map[string]*Document{}, bySource: map[sourceKey]string{}, idem: map[idemKey]idemRecord{}, arrivals: map[string][]time.Time{}}
	for _, o := range opts {
		o(p)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tenants/{tenant}/{collection}", p.serve)
	mux.HandleFunc("PUT /v1/tenants/{tenant}/{collection}/{id}", p.serve)
	mux.HandleFunc("GET /v1/tenants/{tenant}/{collection}/{id}", p.serve)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(p.closed) // release hanging requests first: Close waits for them
		p.srv.Close()
	})
	return p
}

// URL is the partner's base URL (IACC_ACCOUNTING_URL).
func (p *Partner) URL() string { return p.srv.URL }

// Token is the bearer token the partner accepts.
func (p *Partner) Token() string { return p.token }

// Script queues answers for the next requests, in order; normal
// processing resumes when they are used up.
func (p *Partner) Script(answers ...Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script = append(p.script, answers...)
}

// Requests returns every request received so far, in arrival order.
func (p *Partner) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// Documents returns the tenant's documents of a collection, oldest first.
func (p *Partner) Documents(tenantID int64, collection string) []Document {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Document
	for _, d := range p.docs {
		if d.Tenant == strconv.FormatInt(tenantID, 10) && d.Collection == collection {
			out = append(out, copyDoc(d))
		}
	}
	slices.SortFunc(out, func(a, b Document) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// Document returns a stored document by id.
func (p *Partner) Document(id string) (Document, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.docs[id]
	if !ok {
		return Document{}, false
	}
	return copyDoc(d), true
}

func copyDoc(d *Document) Document {
	c := *d
	c.Body = maps.Clone(d.Body)
	return c
}

// WaitFor waits until cond holds, re-checking after every request the
// partner handles; it fails the test after 20 s.
func (p *Partner) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("accountingtest: timed out waiting for %s", what)
		}
	}
}

// notify wakes WaitFor; call with mu held.
func (p *Partner) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// answer is what the partner sends back.
type answer struct {
	status     int
	body       []byte
	retryAfter string
	replayed   bool
}

func problem(status int, typ, detail string, extra map[string]any) answer {
	m := map[string]any{"type": "https://accounting.example/problems/" + typ, "title": http.StatusText(status), "status": status, "detail": detail}
	maps.Copy(m, extra)
	b, _ := json.Marshal(m)
	return answer{status: status, body: b}
}

func (p *Partner) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := Request{Method: r.Method, Path: r.URL.Path, Tenant: r.PathValue("tenant"), Collection: r.PathValue("collection"),
		ID: r.PathValue("id"), IdempotencyKey: r.Header.Get("Idempotency-Key"), Arrived: arrived, Body: body,
		Authorized: r.Header.Get("Authorization") == "Bearer "+p.token}

	p.mu.Lock()
	a, hang := p.handle(&req, body, arrived)
	req.Status = a.status
	if hang {
		req.Status = 0
	}
	req.Replayed = a.replayed
	p.requests = append(p.requests, req)
	p.notify()
	p.mu.Unlock()

	if hang {
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		return
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	if a.replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	ct := "application/json"
	if a.status >= 400 {
		ct = "application/problem+json"
	}
	if len(a.body) > 0 && a.body[0] != '{' {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// handle decides the answer; mu is held. hang means: send nothing.
func (p *Partner) handle(req *Request, body []byte, now time.Time) (answer, bool) {
	if !req.Authorized {
		return problem(http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token", nil), false
	}
	if p.perSec > 0 {
		recent := p.arrivals[req.Tenant][:0:0]
		for _, t := range p.arrivals[req.Tenant] {
			if now.Sub(t) < time.Second {
				recent = append(recent, t)
			}
		}
		p.arrivals[req.Tenant] = append(recent, now)
		if len(recent) >= p.perSec {
			a := problem(http.StatusTooManyRequests, "rate-limited", fmt.Sprintf("at most %d requests per second per tenant", p.perSec), nil)
			a.retryAfter = "1"
			return a, false
		}
	}
	if len(p.script) > 0 {
		s := p.script[0]
		p.script = p.script[1:]
		req.Scripted = true
		switch {
		case s.Hang:
			return answer{}, true
		case s.ApplyThenHang:
			p.process(req, body, now)
			return answer{}, true
		default:
			return answer{status: s.Status, body: []byte(s.Body), retryAfter: s.RetryAfter}, false
		}
	}
	return p.process(req, body, now), false
}

// process applies a request under its idempotency key.
func (p *Partner) process(req *Request, body []byte, now time.Time) answer {
	if _, ok := collections[req.Collection]; !ok {
		return problem(http.StatusNotFound, "not-found", "no such collection "+req.Collection, nil)
	}
	if req.Method == http.MethodGet {
		d, ok := p.docs[req.ID]
		if !ok || d.Tenant != req.Tenant || d.Collection != req.Collection {
			return problem(http.StatusNotFound, "not-found", "no document "+req.ID, nil)
		}
		return docAnswer(http.StatusOK, d)
	}
	key := req.IdempotencyKey
	if key == "" || len(key) > 255 {
		return problem(http.StatusBadRequest, "idempotency-key", "an Idempotency-Key header of 1 to 255 characters is required", nil)
	}
	ik := idemKey{req.Tenant, key}
	if rec, ok := p.idem[ik]; ok {
		if rec.method != req.Method || rec.path != req.Path {
			return problem(http.StatusUnprocessableEntity, "idempotency-key-reused",
				fmt.Sprintf("Idempotency-Key was used for %s %s", rec.method, rec.path), nil)
		}
		return answer{status: rec.status, body: rec.body, replayed: true}
	}
	var a answer
	if req.Method == http.MethodPost {
		a = p.create(req, body, now)
	} else {
		a = p.update(req, body, now)
	}
	if a.status >= 200 && a.status < 300 { // only successes are remembered
		p.idem[ik] = idemRecord{method: req.Method, path: req.Path, status: a.status, body: a.body}
	}
	return a
}

func docAnswer(status int, d *Document) answer {
	m := maps.Clone(d.Body)
	m["id"] = d.ID
	m["version"] = d.Version
	m["created_at"] = d.CreatedAt.UTC().Format(time.RFC3339Nano)
	m["updated_at"] = d.UpdatedAt.UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(m)
	return answer{status: status, body: b}
}

func (p *Partner) create(req *Request, body []byte, now time.Time) answer {
	doc, version, errs, bad := p.decode(req, body)
	if bad != nil {
		return *bad
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	src := doc["source_id"].(string)
	sk := sourceKey{req.Tenant, req.Collection, src}
	if id, ok := p.bySource[sk]; ok {
		return problem(http.StatusConflict, "duplicate-source", "a document with source_id "+src+" exists", map[string]any{"existing_id": id})
	}
	p.nextID++
	d := &Document{ID: collections[req.Collection] + strconv.Itoa(p.nextID), Tenant: req.Tenant, Collection: req.Collection,
		SourceID: src, Version: version, Body: doc, CreatedAt: now, UpdatedAt: now}
	p.docs[d.ID] = d
	p.bySource[sk] = d.ID
	return docAnswer(http.StatusCreated, d)
}

func (p *Partner) update(req *Request, body []byte, now time.Time) answer {
	d, ok := p.docs[req.ID]
	if !ok || d.Tenant != req.Tenant || d.Collection != req.Collection {
		return problem(http.StatusNotFound, "not-found", "no document "+req.ID, nil)
	}
	doc, version, errs, bad := p.decode(req, body)
	if bad != nil {
		return *bad
	}
	if src, _ := doc["source_id"].(string); src != "" && src != d.SourceID {
		errs = append(errs, fieldError{"source_id", "does not match the document's source_id " + d.SourceID})
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	if version > d.Version { // older or equal versions change nothing
		d.Body, d.Version, d.UpdatedAt = doc, version, now
		d.Updates++
	}
	return docAnswer(http.StatusOK, d)
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func invalid(errs []fieldError) answer {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Field + " " + e.Message
	}
	return problem(http.StatusUnprocessableEntity, "validation", "the document is invalid: "+strings.Join(msgs, "; "), map[string]any{"errors": errs})
}

var (
	moneyRe    = regexp.MustCompile(`^-?[0-9]{1,12}\.[0-9]{2}$`)
	quantityRe = regexp.MustCompile(`^[0-9]{1,11}(\.[0-9]{1,3})?$`)
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	dateRe     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// decode parses and validates a body against the protocol's schema.
func (p *Partner) decode(req *Request, body []byte) (map[string]any, int, []fieldError, *answer) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		a := problem(http.StatusBadRequest, "malformed", "the body is not a JSON object: "+err.Error(), nil)
		return nil, 0, nil, &a
	}
	var errs []fieldError
	str := func(m map[string]any, path, field string, re *regexp.Regexp, required bool) string {
		v, ok := m[field]
		if !ok || v == nil {
			if required {
				errs = append(errs, fieldError{path + field, "is required"})
			}
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, fieldError{path + field, "must be a string"})
			return ""
		}
		if required && s == "" {
			errs = append(errs, fieldError{path + field, "must not be empty"})
		}
		if re != nil && s != "" && !re.MatchString(s) {
			errs = append(errs, fieldError{path + field, "must match " + re.String()})
		}
		return s
	}
	timestamp := func(m map[string]any, field string) {
		if s := str(m, "", field, nil, true); s != "" {
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				errs = append(errs, fieldError{field, "must be an RFC 3339 time"})
			}
		}
	}
	str(doc, "", "source_id", nil, true)
	version := 0
	if n, ok := doc["version"].(json.Number); ok {
		if v, err := strconv.Atoi(n.String()); err == nil && v >= 1 {
			version = v
		}
	}
	if version == 0 {
		errs = append(errs, fieldError{"version", "must be a whole number from 1"})
	}
	str(doc, "", "currency", currencyRe, true)
	if v, ok := doc["vendor"].(map[string]any); ok {
		str(v, "vendor.", "source_id", nil, true)
		str(v, "vendor.", "name", nil, true)
	} else {
		errs = append(errs, fieldError{"vendor", "is required"})
	}
	switch req.Collection {
	case "purchase-orders":
		str(doc, "", "number", nil, true)
		str(doc, "", "status", nil, true)
		str(doc, "", "total", moneyRe, true)
		timestamp(doc, "issued_at")
		lines, _ := doc["lines"].([]any)
		if len(lines) == 0 {
			errs = append(errs, fieldError{"lines", "must hold at least one line"})
		}
		for i, l := range lines {
			lm, ok := l.(map[string]any)
			if !ok {
				errs = append(errs, fieldError{fmt.Sprintf("lines[%d]", i), "must be an object"})
				continue
			}
			path := fmt.Sprintf("lines[%d].", i)
			str(lm, path, "description", nil, true)
			str(lm, path, "quantity", quantityRe, true)
			str(lm, path, "unit_price", moneyRe, true)
			str(lm, path, "total", moneyRe, true)
		}
	case "bills":
		str(doc, "", "number", nil, true)
		str(doc, "", "amount", moneyRe, true)
		str(doc, "", "due_date", dateRe, true)
		timestamp(doc, "issued_at")
	case "payments":
		str(doc, "", "amount", moneyRe, true)
		timestamp(doc, "paid_at")
		if bill := str(doc, "", "bill_id", nil, true); bill != "" {
			if d, ok := p.docs[bill]; !ok || d.Tenant != req.Tenant || d.Collection != "bills" {
				errs = append(errs, fieldError{"bill_id", "names no bill of this tenant"})
			}
		}
	}
	return doc, version, errs, nil
}
