package api_test

import (
	"database/sql"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/store"
)

// The authorization matrix: every route of the route table × every role ×
// rows of the caller's tenant and vendor, of another vendor of the tenant,
// and of another tenant. The route list is read from the server at run time,
// so routes added later are covered without editing this file; a route whose
// path names a resource this file cannot make rows of fails, naming what to
// add (matrixResources).

// Markers planted in rows a caller must not see; no response to a caller of
// tenant A may carry markTenantB, and none to A's vendor user markOtherVendor.
const (
	markTenantB     = "secret-tenant-b"
	markOtherVendor = "secret-vendor-2"
)

// matrixRoles are the callers of the matrix; "" is an anonymous caller.
var matrixRoles = []string{"", store.RoleVendor, store.RoleViewer, store.RoleAccounting, store.RoleAdmin}

func roleName(r string) string {
	if r == "" {
		return "anonymous"
	}
	return r
}

type scopeKind int

const (
	otherTenant scopeKind = iota // rows of tenant B; the caller is always of tenant A
	otherVendor                  // rows of tenant A of a vendor that is not the vendor user's
	ownScope                     // rows of tenant A and of the vendor user's vendor
)

func (k scopeKind) String() string {
	return [...]string{"other tenant", "other vendor", "own"}[k]
}

// scope is a tenant and a vendor with rows of every resource, made when a
// request first names them.
type scope struct {
	m        *matrix
	kind     scopeKind
	tenantID int64
	action   string // the route's action: its order starts in the state the action needs
	rows     map[string]int64
}

// make makes the scope's row of the name (false: no such kind of row).
func (sc *scope) make(t *testing.T, name string) (int64, bool) {
	t.Helper()
	b := sc.m.b
	switch name {
	case "vendor":
		v, err := store.CreateVendor(t.Context(), b.db, store.Vendor{TenantID: sc.tenantID, Name: fmt.Sprintf("%s vendor %d", sc.mark(), sc.m.next())})
		if err != nil {
			t.Fatalf("create vendor: %v", err)
		}
		return v.ID, true
	case "order":
		id := b.mkOrder(t, sc.tenantID, sc.id(t, "vendor"), sc.mark()+" order")
		switch sc.action {
		case "receive":
			b.moveOrder(t, sc.tenantID, id, "approve")
		case "close":
			b.moveOrder(t, sc.tenantID, id, "approve", "receive")
		}
		return id, true
	case "billable": // approved, 21.00, 5.00 invoiced
		id := b.mkOrder(t, sc.tenantID, sc.id(t, "vendor"), sc.mark()+" billable order")
		b.moveOrder(t, sc.tenantID, id, "approve")
		return id, true
	case "invoice": // 5.00, 1.00 paid
		return b.mkInvoice(t, sc.tenantID, sc.id(t, "billable"), "5.00", sc.mark()+" invoice"), true
	case "payment":
		return b.mkPayment(t, sc.tenantID, sc.id(t, "invoice"), "1.00", sc.mark()+" payment"), true
	case "product":
		p, err := store.CreateProduct(t.Context(), b.db, store.Product{TenantID: sc.tenantID, SKU: fmt.Sprintf("%s-%d", sc.plain(), sc.m.next()),
			Name: sc.plain() + " product", UnitPrice: decimal.RequireFromString("3.50"), Currency: "EUR"})
		if err != nil {
			t.Fatalf("create product: %v", err)
		}
		return p.ID, true
	case "user": // a viewer
		u, _ := b.addUser(t, sc.tenantID, store.RoleViewer, 0, fmt.Sprintf("%s-viewer-%d@matrix.test", sc.plain(), sc.m.next()))
		return u.ID, true
	case "report": // with its CSV
		key := fmt.Sprintf("reports/matrix-%d.csv", sc.m.next())
		if _, err := b.blobs.Put(t.Context(), key, strings.NewReader("day,orders\n")); err != nil {
			t.Fatalf("store report CSV: %v", err)
		}
		day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, sc.m.next())
		var id int64
		err := b.db.InTx(t.Context(), func(tx *sql.Tx) error {
			r, _, err := store.SaveReport(t.Context(), tx, sc.tenantID, day, store.ReportData{}, key)
			id = r.ID
			return err
		})
		if err != nil {
			t.Fatalf("save report: %v", err)
		}
		return id, true
	case "webhook", "delivery": // an enabled endpoint with a failed, so retryable, delivery
		sc.rows["webhook"], sc.rows["delivery"] = b.mkWebhook(t, sc.tenantID, sc.plain()+" endpoint")
		return sc.rows[name], true
	}
	return 0, false
}

// id returns the scope's row of the name, making it on first use.
func (sc *scope) id(t *testing.T, name string) int64 {
	t.Helper()
	if id, ok := sc.rows[name]; ok {
		return id
	}
	id, ok := sc.make(t, name)
	if !ok {
		t.Fatalf("scope.make cannot make a %q", name)
	}
	sc.rows[name] = id
	sc.m.made = true
	return id
}

// mark is planted in the scope's vendor rows.
func (sc *scope) mark() string {
	return [...]string{markTenantB, markOtherVendor, "own"}[sc.kind]
}

// plain is planted in the scope's rows of no vendor (which the vendor user
// may see in its own tenant).
func (sc *scope) plain() string {
	if sc.kind == otherTenant {
		return markTenantB
	}
	return "plain"
}

// ref is a kind of row a path or query parameter names.
type ref struct {
	row          string // for scope.make
	vendorScoped bool   // a vendor user sees only its own vendor's rows
}

// matrixResources are the collections (the path segment before a
// parameter) the matrix can make rows of. A new resource gets a line here.
var matrixResources = map[string]ref{
	"purchase-orders": {"order", true},
	"invoices":        {"invoice", true},
	"payments":        {"payment", true},
	"vendors":         {"vendor", true},
	"products":        {"product", false},
	"users":           {"user", false},
	"webhooks":        {"webhook", false},
	"deliveries":      {"delivery", false},
	"reports":         {"report", false},
}

// matrixQueryIDs are the documented query parameters that name rows.
var matrixQueryIDs = map[string]ref{
	"vendor_id":         {"vendor", true},
	"purchase_order_id": {"billable", true},
	"invoice_id":        {"invoice", true},
	"entity_id":         {"order", false},
}

// matrix makes the rows and requests of the authorization tests.
type matrix struct {
	b               *testBundle
	accountingToken string
	seq             int
	made            bool            // rows were made since the last state snapshot
	cases           [4]int          // requests by expectation
	missing         map[string]bool // fixtures reported missing

	// Rows only read are shared by the routes: tenant B's (never written:
	// the matrix asserts it) and, for reading routes, tenant A's.
	shared      [3]*scope
	sharedToken string // the vendor user of shared[ownScope]
}

func newMatrix(t *testing.T, b *testBundle) *matrix {
	t.Helper()
	_, acc := b.addUser(t, b.A.Tenant.ID, store.RoleAccounting, 0, "accounting@a.test")
	m := &matrix{b: b, accountingToken: acc, missing: map[string]bool{}}
	for k := range m.shared {
		m.shared[k] = m.newScope(scopeKind(k), "")
		for _, res := range matrixResources { // every row: lists must list something
			m.shared[k].id(t, res.row)
		}
		m.shared[k].id(t, "billable")
	}
	m.sharedToken = m.vendorUser(t, m.shared[ownScope])
	return m
}

func (m *matrix) next() int { m.seq++; return m.seq }

func (m *matrix) newScope(kind scopeKind, action string) *scope {
	sc := &scope{m: m, kind: kind, tenantID: m.b.A.Tenant.ID, action: action, rows: map[string]int64{}}
	if kind == otherTenant {
		sc.tenantID = m.b.B.Tenant.ID
	}
	return sc
}

// vendorUser makes a vendor user of the scope's vendor and returns its token.
func (m *matrix) vendorUser(t *testing.T, own *scope) string {
	t.Helper()
	_, tok := m.b.addUser(t, m.b.A.Tenant.ID, store.RoleVendor, own.id(t, "vendor"), fmt.Sprintf("vendor-%d@a.test", m.next()))
	return tok
}

// matrixRequest is a request of a route for a scope.
type matrixRequest struct {
	request
	known        bool // every row named exists and the body is a valid one
	pathRef      bool // the path names a row of the scope
	bodyRef      bool // the body names a row of the scope
	queryRef     bool // the query names a row of the scope
	vendorScoped bool // the rows named are vendor-scoped
	wantStatus   int  // the status a valid request gets, when it is not 2xx
}

func (r matrixRequest) refs() bool { return r.pathRef || r.bodyRef || r.queryRef }

// request builds the request of route r against the rows of sc. Path
// parameters are filled from matrixResources; documented query parameters
// naming rows from matrixQueryIDs; bodies are valid ones for the routes this
// file knows, {} otherwise.
func (m *matrix) request(t *testing.T, r api.RouteInfo, sc *scope) matrixRequest {
	t.Helper()
	out := matrixRequest{known: true}
	segs := strings.Split(r.Path, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, ":") {
			continue
		}
		res, ok := matrixResources[segs[i-1]]
		if !ok {
			if !m.missing[r.Path+s] {
				m.missing[r.Path+s] = true
				t.Errorf("the authorization matrix cannot make rows for %s in %s %s, so its tenant and vendor isolation is untested: "+
					"add %q to matrixResources (authz_test.go)", s, r.Method, r.Path, segs[i-1])
			}
			segs[i] = "1099511627776" // no such row
			out.known = false
			continue
		}
		segs[i] = itoa64(sc.id(t, res.row))
		out.pathRef = true
		out.vendorScoped = out.vendorScoped || res.vendorScoped
	}
	q := url.Values{}
	for _, name := range r.Query {
		switch qr, ok := matrixQueryIDs[name]; {
		case ok:
			q.Set(name, itoa64(sc.id(t, qr.row)))
			out.queryRef = true
			out.vendorScoped = out.vendorScoped || qr.vendorScoped
		case name == "tenant_id":
			q.Set(name, itoa64(sc.tenantID))
		case name == "entity_type":
			q.Set(name, "purchase_order") // with entity_id: the scope's order
		}
	}
	out.Method, out.Path = r.Method, strings.Join(segs, "/")
	if len(q) > 0 {
		out.Path += "?" + q.Encode()
	}
	if r.Request {
		out.Body, out.bodyRef, out.wantStatus = m.body(t, r, sc)
		if out.Body == nil {
			out.Body, out.known = obj{}, false
		}
		if out.bodyRef {
			out.vendorScoped = true // every body reference is to a vendor's row
		}
	}
	return out
}

// body is a valid body of a known route (nil for others), whether it names
// rows of the scope, and the status it gets when that is not 2xx.
func (m *matrix) body(t *testing.T, r api.RouteInfo, sc *scope) (body any, refs bool, status int) {
	t.Helper()
	n := m.next()
	switch r.Method + " " + r.Path {
	case "POST /auth/login":
		// Valid JSON that the handler refuses before bcrypt (slow under -race):
		// the request got past the middleware, which is what is tested here.
		return obj{"email": m.b.A.Admin.Email, "password": strings.Repeat("p", 73)}, false, http.StatusUnprocessableEntity
	case "POST /auth/refresh", "POST /auth/logout":
		m.made = true
		return obj{"refresh_token": m.b.plantSession(t, m.b.A.Admin)}, false, 0
	case "POST /api/products":
		return obj{"sku": fmt.Sprintf("matrix-%d", n), "name": "Matrix product", "unit_price": "1.00", "currency": "EUR"}, false, 0
	case "PATCH /api/products/:id":
		return obj{"name": fmt.Sprintf("renamed %d", n)}, false, 0
	case "POST /api/vendors":
		return obj{"name": fmt.Sprintf("Matrix vendor %d", n)}, false, 0
	case "PATCH /api/vendors/:id":
		return obj{"phone": fmt.Sprintf("+1 555 %04d", n)}, false, 0
	case "POST /api/purchase-orders":
		return validPO(sc.id(t, "vendor")), true, 0
	case "POST /api/invoices":
		return obj{"purchase_order_id": sc.id(t, "billable"), "amount": "1.00"}, true, 0
	case "POST /api/payments":
		return obj{"invoice_id": sc.id(t, "invoice"), "amount": "0.01"}, true, 0
	case "POST /api/users":
		return obj{"email": fmt.Sprintf("matrix-%d@a.test", n), "password": "a long enough password", "role": store.RoleVendor,
			"vendor_id": sc.id(t, "vendor")}, true, 0
	case "PATCH /api/users/:id":
		return obj{"role": store.RoleViewer}, false, 0
	case "POST /api/webhooks":
		return obj{"url": "https://receiver.example/new", "event_types": []string{store.EventInvoiceCreated}}, false, 0
	case "PATCH /api/webhooks/:id":
		return obj{"description": fmt.Sprintf("changed %d", n)}, false, 0
	case "POST /api/webhooks/:id/rotate-secret":
		return obj{"overlap_seconds": 60}, false, 0
	}
	return nil, false, 0
}

// webhookSecret matches a signing secret (store.NewWebhookSecret), not the
// word in a summary.
var webhookSecret = regexp.MustCompile(regexp.QuoteMeta(store.WebhookSecretPrefix) + `[A-Za-z0-9+/]{40,}`)

func itoa64(n int64) string { return fmt.Sprint(n) }

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := newMatrix(t, b)
	routes := b.srv.RouteTable()
	for _, r := range routes {
		t.Run(r.Method+" "+r.Path, func(t *testing.T) { m.run(t, r) })
	}
	t.Logf("%d routes: %d requests got 401, %d 403, %d isolated (404 / empty list), %d allowed",
		len(routes), m.cases[wantUnauthorized], m.cases[wantForbidden], m.cases[wantIsolated], m.cases[wantAllowed])
	for e, n := range m.cases {
		if n == 0 {
			t.Errorf("no request of the matrix expected outcome %d: the matrix is broken", e)
		}
	}
}

// expectation is what a matrix request must get.
type expectation int

const (
	wantUnauthorized expectation = iota // 401: anonymous on a token route
	wantForbidden                       // 403: the role is not allowed
	wantIsolated                        // the rows named are invisible: 404, 422 or an empty list
	wantAllowed                         // through the access checks
)

// run checks one route for every role and scope. Routes that only read
// share rows; a writing route gets fresh rows of tenant A (its writes must
// not disturb other routes), and tenant B's rows are shared by all, since
// the matrix asserts that nothing writes them.
func (m *matrix) run(t *testing.T, r api.RouteInfo) {
	b := m.b
	scopes, vendorToken := m.shared, m.sharedToken
	if r.Method != "GET" {
		action := r.Path[strings.LastIndex(r.Path, "/")+1:]
		scopes[otherVendor], scopes[ownScope] = m.newScope(otherVendor, action), m.newScope(ownScope, action)
		vendorToken = m.vendorUser(t, scopes[ownScope])
	}
	tokens := map[string]string{store.RoleVendor: vendorToken, store.RoleViewer: b.A.ViewerToken,
		store.RoleAccounting: m.accountingToken, store.RoleAdmin: b.A.AdminToken}

	m.made = true
	var before dbState
	for _, sc := range scopes {
		for _, role := range matrixRoles {
			// Public routes have no tenant for an anonymous caller (any
			// tenant's catalog is public), and plain public routes ignore
			// tokens: only their own-scope requests say anything.
			if r.Public && (role == "" || !r.Optional) && sc.kind != ownScope {
				continue
			}
			req := m.request(t, r, sc)
			req.Token = tokens[role]
			exp := wantAllowed
			switch {
			case !r.Allows(role) && role == "":
				exp = wantUnauthorized
			case !r.Allows(role):
				exp = wantForbidden
			case req.refs() && (sc.kind == otherTenant || (sc.kind == otherVendor && role == store.RoleVendor && req.vendorScoped)):
				exp = wantIsolated
			}
			// Refused requests and reads write nothing: compare the tables.
			noWrites := exp != wantAllowed || r.Method == "GET"
			if noWrites && m.made {
				before, m.made = b.state(t), false
			}
			res := b.send(t, req.request)
			var changed []string
			if noWrites {
				after := b.state(t)
				changed, before = before.changed(after), after
			} else {
				m.made = true // a write: the next comparison needs a new snapshot
			}
			m.cases[exp]++
			m.check(t, r, role, sc, req, exp, res, changed)
		}
	}
}

func (m *matrix) check(t *testing.T, r api.RouteInfo, role string, sc *scope, req matrixRequest, exp expectation, res response, changed []string) {
	t.Helper()
	what := fmt.Sprintf("%s %s as %s on %s rows", req.Method, req.Path, roleName(role), sc.kind)
	problemOf := func(status int) {
		t.Helper()
		if res.Status != status {
			t.Errorf("%s = %d %s; want %d", what, res.Status, res.Body, status)
			return
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
		}
	}
	if len(changed) > 0 {
		t.Errorf("%s = %d, and changed tables %v; want no writes", what, res.Status, changed)
	}
	// Leaks: nothing of tenant B reaches a caller of tenant A, nothing of
	// another vendor reaches the vendor user.
	if role != "" && strings.Contains(string(res.Body), markTenantB) {
		t.Errorf("%s = %d: the body carries rows of tenant B: %s", what, res.Status, res.Body)
	}
	if role == store.RoleVendor && strings.Contains(string(res.Body), markOtherVendor) {
		t.Errorf("%s = %d: the vendor user gets rows of another vendor: %s", what, res.Status, res.Body)
	}
	// Secrets: password hashes never leave; a webhook signing secret only
	// in the responses that issue one.
	if strings.Contains(string(res.Body), "$2a$") || strings.Contains(string(res.Body), "$2b$") {
		t.Errorf("%s = %d: the body carries a bcrypt hash: %s", what, res.Status, res.Body)
	}
	if webhookSecret.Match(res.Body) && r.Method+" "+r.Path != "POST /api/webhooks" && !strings.HasSuffix(r.Path, "/rotate-secret") {
		t.Errorf("%s = %d: the body carries a webhook signing secret: %s", what, res.Status, res.Body)
	}

	switch exp {
	case wantUnauthorized:
		problemOf(http.StatusUnauthorized)
		// A mounted browser application may challenge for Basic as well.
		if ch := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") && !(r.Mount && strings.HasPrefix(ch, "Basic")) {
			t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", what, ch)
		}
		return
	case wantForbidden:
		// A mounted application may send a role it refuses to another
		// mounted route of the table that allows the role.
		if r.Mount && res.Status/100 == 3 {
			loc := res.Header.Get("Location")
			for _, o := range m.b.srv.RouteTable() {
				if o.Mount && o.Path == loc && o.Allows(role) {
					return
				}
			}
			t.Errorf("%s = %d to %q; want 403 or a redirect to a route the role may use", what, res.Status, loc)
			return
		}
		problemOf(http.StatusForbidden)
		return
	}
	if res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden || res.Status >= 500 {
		t.Errorf("%s = %d %s; the role is allowed", what, res.Status, res.Body)
		return
	}
	switch {
	case exp == wantIsolated && req.pathRef:
		problemOf(http.StatusNotFound)
	case exp == wantIsolated && req.bodyRef:
		if res.Status != http.StatusNotFound && res.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s = %d %s; want 404 or 422 for rows the caller cannot see", what, res.Status, res.Body)
		}
	case exp == wantIsolated:
		if res.Status != http.StatusOK {
			t.Errorf("%s = %d %s; want 200 and an empty list", what, res.Status, res.Body)
			return
		}
		if data := listData(t, res); len(data) != 0 {
			t.Errorf("%s lists %d rows the caller cannot see: %s", what, len(data), res.Body)
		}
	case req.known:
		// The same request on rows the caller may see works: so a 404 above
		// is isolation, not a broken fixture.
		switch {
		case req.wantStatus != 0:
			if res.Status != req.wantStatus {
				t.Errorf("%s = %d %s; want %d", what, res.Status, res.Body, req.wantStatus)
			}
		case req.Method == "GET" && r.Public && !r.Optional:
			// ops routes (/health, /metrics, ...): their answer depends on
			// the deployment, not on the caller
		case req.Method == "GET":
			if res.Status != http.StatusOK && res.Status != http.StatusAccepted {
				t.Errorf("%s = %d %s; want 200 (or 202 for a PDF being rendered)", what, res.Status, res.Body)
			}
			if res.Status == http.StatusOK && req.queryRef && len(listData(t, res)) == 0 {
				t.Errorf("%s lists nothing; want the scope's rows", what)
			}
		default: // a write: done, or refused by the state of the row (a second transition)
			if res.Status/100 != 2 && res.Status != http.StatusConflict {
				t.Errorf("%s = %d %s; want 2xx (or 409)", what, res.Status, res.Body)
			}
		}
	}
}

// Every route the Fiber app serves has a row in the route table, and every
// row states who may call it. A handler registered outside the table (or
// mounted with Use on a path) fails here.
func TestEveryRouteIsInTheRouteTable(t *testing.T) {
	t.Parallel()
	srv := setup(t).srv
	for _, p := range routeTableProblems(t, srv, srv.RouteTable()) {
		t.Error(p)
	}
}

// The check above finds a stray route, a stray mounted handler and a row
// with empty access.
func TestRouteTableCheckFindsStrays(t *testing.T) {
	t.Parallel()
	srv := setup(t).srv
	srv.App().Get("/stray", func(c *fiber.Ctx) error { return c.SendString("no row") })
	srv.App().Use("/stray-mount", func(c *fiber.Ctx) error { return c.SendString("no row") })
	rows := append(srv.RouteTable(), api.RouteInfo{Method: "DELETE", Path: "/api/me"})
	got := strings.Join(routeTableProblems(t, srv, rows), "\n")
	for _, want := range []string{"GET /stray is served", "Use on /stray-mount", "DELETE /api/me has empty access", "DELETE /api/me is not registered"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not report %q:\n%s", want, got)
		}
	}
}

// routeTableProblems compares the Fiber app's routes with the route table
// rows and checks every row's access.
func routeTableProblems(t *testing.T, srv *api.Server, rows []api.RouteInfo) []string {
	t.Helper()
	var out []string
	problem := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	// The first request runs Fiber's startup (mounted sub-apps join the stack).
	if res := sendTo(t, srv, request{Method: "GET", Path: "/health"}); res.Status != http.StatusOK {
		t.Fatalf("GET /health = %d", res.Status)
	}
	table := map[string]api.RouteInfo{}
	for _, r := range rows {
		key := r.Method + " " + r.Path
		if _, dup := table[key]; dup {
			problem("route table: %s appears twice", key)
		}
		table[key] = r
		switch {
		case !r.Public && len(r.Roles) == 0:
			problem("route table: %s has empty access (no roles and not public)", key)
		case r.Public && len(r.Roles) > 0:
			problem("route table: %s is public and lists roles %v", key, r.Roles)
		case r.Optional && !r.Public:
			problem("route table: %s is optional but not public", key)
		}
		for _, role := range r.Roles {
			// "ops" is the dashboard token's pseudo-role (monitoring.go).
			if !store.ValidRole(role) && !(r.Mount && role == "ops") {
				problem("route table: %s allows unknown role %q", key, role)
			}
		}
	}
	// Handlers registered with Use on a path other than "/" serve the
	// subtree under it: the table's mount rows, or unlisted handlers.
	useRoutes := map[string]bool{}
	registered := map[string]bool{}
	nonUse := map[string]bool{}
	for _, fr := range srv.App().GetRoutes(true) {
		nonUse[fr.Method+" "+fr.Path] = true
	}
	for _, fr := range srv.App().GetRoutes() {
		if !nonUse[fr.Method+" "+fr.Path] && fr.Path != "/" {
			useRoutes[fr.Path] = true
		}
	}
	for _, r := range table {
		if r.Mount && useRoutes[r.Path] {
			registered[r.Method+" "+r.Path] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(nonUse)) {
		method, p, _ := strings.Cut(key, " ")
		if method == http.MethodHead {
			if _, ok := table["GET "+p]; ok {
				continue // Fiber answers HEAD for every GET route
			}
		}
		registered[key] = true
		if _, ok := table[key]; !ok {
			problem("%s is served by the Fiber app but has no row in the route table (routes.go): nothing checks who may call it", key)
		}
	}
	// An unlisted Use on a path is either middleware of a prefix or a
	// mounted handler; a handler answers requests no table row covers. Probe
	// each such prefix anonymously: with no table route under it, it must
	// answer Fiber's 404.
	for _, p := range slices.Sorted(maps.Keys(useRoutes)) {
		if r, ok := table["GET "+p]; ok && r.Mount {
			continue
		}
		for _, probe := range []string{p, p + "/", p + "/index.html"} {
			if _, ok := table["GET "+probe]; ok {
				continue
			}
			if res := sendTo(t, srv, request{Method: "GET", Path: probe}); res.Status != http.StatusNotFound {
				problem("GET %s = %d: a handler mounted with Use on %s answers requests that have no row in the route table "+
					"(routes.go), so the table, its access checks and the OpenAPI document do not cover it", probe, res.Status, p)
				break
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(table)) {
		if !registered[key] {
			problem("route table row %s is not registered in the Fiber app", key)
		}
	}
	return out
}

// A vendor user sees only its own vendor's orders, invoices and payments
// (lists and single rows), cannot order, and may invoice only its own
// vendor's orders.
func TestVendorUserSeesOnlyItsVendor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type rows struct{ order, billable, invoice, payment int64 }
	mk := func(tenantID, vendorID int64) rows {
		var r rows
		r.order = b.mkOrder(t, tenantID, vendorID, "")
		r.billable = b.mkOrder(t, tenantID, vendorID, "")
		b.moveOrder(t, tenantID, r.billable, "approve")
		r.invoice = b.mkInvoice(t, tenantID, r.billable, "10.00", "")
		r.payment = b.mkPayment(t, tenantID, r.invoice, "4.00", "")
		return r
	}
	own, other, otherTenant := mk(b.A.Tenant.ID, b.A.Vendor.ID), mk(b.A.Tenant.ID, b.A.Vendor2.ID), mk(b.B.Tenant.ID, b.B.Vendor.ID)
	tok := b.A.VendorToken

	lists := []struct {
		path string
		want []int64
	}{
		{"/api/purchase-orders", []int64{own.billable, own.order}},
		{"/api/invoices", []int64{own.invoice}},
		{"/api/payments", []int64{own.payment}},
		{path("/api/purchase-orders?vendor_id=%d", b.A.Vendor2.ID), nil},
		{path("/api/invoices?vendor_id=%d", b.A.Vendor2.ID), nil},
		{path("/api/payments?vendor_id=%d", b.A.Vendor2.ID), nil},
		{path("/api/invoices?purchase_order_id=%d", other.billable), nil},
		{path("/api/payments?invoice_id=%d", other.invoice), nil},
	}
	for _, l := range lists {
		res := b.do(t, "GET", l.path, tok, nil)
		if res.Status != http.StatusOK {
			t.Errorf("GET %s = %d %s", l.path, res.Status, res.Body)
			continue
		}
		got := idsOf(t, listData(t, res))
		slices.Sort(got)
		want := slices.Clone(l.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("vendor user GET %s lists %v, want %v", l.path, got, want)
		}
	}
	for _, p := range []string{
		path("/api/purchase-orders/%d", own.order), path("/api/purchase-orders/%d/activity", own.order),
		path("/api/invoices/%d", own.invoice), path("/api/payments/%d", own.payment), path("/api/vendors/%d", b.A.Vendor.ID),
	} {
		if res := b.do(t, "GET", p, tok, nil); res.Status != http.StatusOK {
			t.Errorf("vendor user GET %s (own vendor) = %d %s", p, res.Status, res.Body)
		}
	}
	for _, r := range []rows{other, otherTenant} {
		for _, p := range []string{
			path("/api/purchase-orders/%d", r.order), path("/api/purchase-orders/%d/pdf", r.order), path("/api/purchase-orders/%d/activity", r.order),
			path("/api/invoices/%d", r.invoice), path("/api/invoices/%d/pdf", r.invoice), path("/api/payments/%d", r.payment),
		} {
			wantProblem(t, b.do(t, "GET", p, tok, nil), http.StatusNotFound)
		}
	}
	for _, v := range []int64{b.A.Vendor2.ID, b.B.Vendor.ID} {
		wantProblem(t, b.do(t, "GET", path("/api/vendors/%d", v), tok, nil), http.StatusNotFound)
	}

	before := b.state(t)
	wantProblem(t, b.do(t, "POST", "/api/purchase-orders", tok, validPO(b.A.Vendor.ID)), http.StatusForbidden)
	b.wantNoWrites(t, before, "a vendor user's order")

	// Invoicing another vendor's order (or another tenant's) is refused as
	// if the order did not exist, and writes nothing.
	for _, po := range []int64{other.billable, otherTenant.billable} {
		res := b.do(t, "POST", "/api/invoices", tok, obj{"purchase_order_id": po, "amount": "1.00"})
		if res.Status != http.StatusNotFound && res.Status != http.StatusUnprocessableEntity {
			t.Errorf("vendor user invoicing order %d of another vendor = %d %s; want 404 or 422", po, res.Status, res.Body)
		}
		wantProblem(t, res, res.Status)
		b.wantNoWrites(t, before, "a vendor user invoicing another vendor's order")
	}
	res := b.do(t, "POST", "/api/invoices", tok, obj{"purchase_order_id": own.billable, "amount": "1.00"})
	if res.Status != http.StatusCreated {
		t.Fatalf("vendor user invoicing its own vendor's order = %d %s", res.Status, res.Body)
	}
	var inv struct {
		VendorID        int64 `json:"vendor_id"`
		PurchaseOrderID int64 `json:"purchase_order_id"`
	}
	res.decode(t, &inv)
	if inv.VendorID != b.A.Vendor.ID || inv.PurchaseOrderID != own.billable {
		t.Errorf("invoice = %+v, want vendor %d, order %d", inv, b.A.Vendor.ID, own.billable)
	}
}

// massAssignable are fields a client must never set: the server owns them.
var massAssignable = map[string]any{
	"tenant_id":    nil, // filled with tenant B's id
	"role":         store.RoleAdmin,
	"status":       "paid",
	"total_amount": "0.01",
	"balance":      "0.00",
	"paid_amount":  "999.00",
	"created_by":   nil, // filled with B's admin id
}

// Bodies carrying server-owned fields are refused with 422 naming the
// field as unknown, and write nothing. Every route of the table that takes a
// body is tried, with a valid body plus the field.
func TestMassAssignmentIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := newMatrix(t, b)
	tokens := map[string]string{store.RoleAdmin: b.A.AdminToken, store.RoleAccounting: m.accountingToken, store.RoleVendor: b.A.VendorToken}
	values := maps.Clone(massAssignable)
	values["tenant_id"], values["created_by"] = b.B.Tenant.ID, b.B.Admin.ID
	tried := 0
	for _, r := range b.srv.RouteTable() {
		if !r.Request {
			continue
		}
		tried++
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			role := ""
			if !r.Public {
				for _, c := range []string{store.RoleAdmin, store.RoleAccounting, store.RoleVendor} {
					if r.Allows(c) {
						role = c
						break
					}
				}
			}
			sc := m.newScope(ownScope, "")
			for _, field := range slices.Sorted(maps.Keys(values)) {
				if field == "role" && strings.HasPrefix(r.Path, "/api/users") {
					continue // a user's role is set by admins through these routes
				}
				req := m.request(t, r, sc)
				body := obj{}
				if o, ok := req.Body.(obj); ok {
					body = maps.Clone(o)
				}
				body[field] = values[field]
				req.Body, req.Token = body, tokens[role]
				before := b.state(t)
				p := wantProblem(t, b.send(t, req.request), http.StatusUnprocessableEntity, field)
				for _, e := range p.Errors {
					if e.Field == field && e.Message != "unknown field" {
						t.Errorf("%s with %q: message %q, want \"unknown field\"", r.Path, field, e.Message)
					}
				}
				b.wantNoWrites(t, before, fmt.Sprintf("%s %s with %q", r.Method, r.Path, field))
			}
		})
	}
	if tried == 0 {
		t.Fatal("no route of the table takes a body")
	}

	// Nested: an order item's computed fields.
	for _, field := range []string{"line_total", "total_amount", "tenant_id"} {
		body := validPO(b.A.Vendor.ID)
		item(body, 0)[field] = "1.00"
		before := b.state(t)
		wantProblem(t, b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, body), http.StatusUnprocessableEntity, field)
		b.wantNoWrites(t, before, "an order item with "+field)
	}
}
