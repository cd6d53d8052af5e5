package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
)

type vendorJSON struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Phone     string    `json:"phone"`
	Address   string    `json:"address"`
	Balance   string    `json:"balance"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type vendorListJSON struct {
	Data []vendorJSON `json:"data"`
	Meta listMetaJSON `json:"meta"`
}

func TestCreateVendor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "POST", "/api/vendors", b.A.AdminToken, obj{"name": "  Initech  ", "email": "orders@initech.example",
		"phone": "+1 555 0100", "address": "1 Main St"})
	if res.Status != http.StatusCreated {
		t.Fatalf("create vendor = %d %s", res.Status, res.Body)
	}
	var v vendorJSON
	res.decode(t, &v)
	if v.ID <= 0 || v.Name != "Initech" || v.Email != "orders@initech.example" || v.Phone != "+1 555 0100" || v.Address != "1 Main St" ||
		v.Balance != "0.00" || v.Status != "active" || v.CreatedAt.IsZero() {
		t.Errorf("vendor = %+v", v)
	}
	if got, want := res.Header.Get("Location"), "/api/vendors/"+strconv.FormatInt(v.ID, 10); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}

	// Stored in tenant A with an audit entry.
	if n := b.queryInt(t, `SELECT COUNT(*) FROM vendors WHERE id = ? AND tenant_id = ? AND name = 'Initech' AND balance = 0`, v.ID, b.A.Tenant.ID); n != 1 {
		t.Errorf("vendor row in tenant A: %d", n)
	}
	if n := b.queryInt(t, `SELECT COUNT(*) FROM audit_log WHERE tenant_id = ? AND action = 'vendor.create' AND entity_type = 'vendor' AND entity_id = ? AND actor_id = ?`,
		b.A.Tenant.ID, v.ID, b.A.Admin.ID); n != 1 {
		t.Errorf("audit rows for the vendor = %d, want 1", n)
	}

	// Get it back.
	res = b.do(t, "GET", path("/api/vendors/%d", v.ID), b.A.ViewerToken, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("get vendor = %d %s", res.Status, res.Body)
	}
	var got vendorJSON
	res.decode(t, &got)
	if got.ID != v.ID || got.Name != v.Name || got.Balance != "0.00" || !got.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("get vendor = %+v, want %+v", got, v)
	}

	// Only the name is required; tenant B may use the same name.
	res = b.do(t, "POST", "/api/vendors", b.B.AdminToken, obj{"name": "Initech"})
	if res.Status != http.StatusCreated {
		t.Fatalf("same name in tenant B = %d %s", res.Status, res.Body)
	}
	// Accounting may create vendors too.
	acct := b.createUser(t, b.A, "accounting")
	if res := b.do(t, "POST", "/api/vendors", acct, obj{"name": "Umbrella"}); res.Status != http.StatusCreated {
		t.Errorf("accounting creates vendor = %d %s", res.Status, res.Body)
	}
	for _, p := range []string{"/api/vendors/999999", "/api/vendors/abc", "/api/vendors/0"} {
		wantProblem(t, b.do(t, "GET", p, b.A.AdminToken, nil), http.StatusNotFound)
	}
}

func TestCreateVendorRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"duplicate name", obj{"name": b.A.Vendor.Name}, http.StatusUnprocessableEntity, "name"},
		{"duplicate name other case", obj{"name": strings.ToUpper(b.A.Vendor.Name)}, http.StatusUnprocessableEntity, "name"},
		{"duplicate name padded", obj{"name": " " + b.A.Vendor.Name + " "}, http.StatusUnprocessableEntity, "name"},
		{"missing name", obj{"email": "a@b.example"}, http.StatusUnprocessableEntity, "name"},
		{"blank name", obj{"name": "   "}, http.StatusUnprocessableEntity, "name"},
		{"name too long", obj{"name": strings.Repeat("n", 201)}, http.StatusUnprocessableEntity, "name"},
		{"invalid email", obj{"name": "Soylent", "email": "not-an-email"}, http.StatusUnprocessableEntity, "email"},
		{"email with display name", obj{"name": "Soylent", "email": "Soylent <orders@soylent.example>"}, http.StatusUnprocessableEntity, "email"},
		{"email without domain", obj{"name": "Soylent", "email": "orders@"}, http.StatusUnprocessableEntity, "email"},
		{"phone too long", obj{"name": "Soylent", "phone": strings.Repeat("1", 51)}, http.StatusUnprocessableEntity, "phone"},
		{"address too long", obj{"name": "Soylent", "address": strings.Repeat("a", 1001)}, http.StatusUnprocessableEntity, "address"},
		{"name not a string", obj{"name": 42}, http.StatusUnprocessableEntity, "name"},
		{"mass assignment balance", obj{"name": "Soylent", "balance": "1000000.00"}, http.StatusUnprocessableEntity, "balance"},
		{"mass assignment tenant_id", obj{"name": "Soylent", "tenant_id": b.B.Tenant.ID}, http.StatusUnprocessableEntity, "tenant_id"},
		{"mass assignment status", obj{"name": "Soylent", "status": "archived"}, http.StatusUnprocessableEntity, "status"},
		{"malformed JSON", `{"name": "Soylent"`, http.StatusBadRequest, ""},
		{"trailing garbage", `{"name": "Soylent"} {}`, http.StatusBadRequest, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := b.counts(t)
			var fields []string
			if tc.field != "" {
				fields = []string{tc.field}
			}
			wantProblem(t, b.do(t, "POST", "/api/vendors", b.A.AdminToken, tc.body), tc.status, fields...)
			b.wantUnchanged(t, before)
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		before := b.counts(t)
		wantProblem(t, b.send(t, request{Method: "POST", Path: "/api/vendors", Token: b.A.AdminToken, Body: `{"name":"Soylent"}`,
			Header: map[string]string{"Content-Type": "text/plain"}}), http.StatusUnsupportedMediaType)
		b.wantUnchanged(t, before)
	})
}

func TestListVendors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var created []int64
	for i := range 3 {
		res := b.do(t, "POST", "/api/vendors", b.A.AdminToken, obj{"name": fmt.Sprintf("Vendor %d", i)})
		if res.Status != http.StatusCreated {
			t.Fatalf("create = %d %s", res.Status, res.Body)
		}
		var v vendorJSON
		res.decode(t, &v)
		created = append(created, v.ID)
	}
	if _, err := b.db.ExecContext(t.Context(), `UPDATE vendors SET status = 'archived' WHERE id = ?`, created[0]); err != nil {
		t.Fatal(err)
	}
	// Tenant A: the two fixture vendors and the three new ones, newest first.
	all := []int64{created[2], created[1], created[0], b.A.Vendor2.ID, b.A.Vendor.ID}
	list := func(query string) vendorListJSON {
		t.Helper()
		res := b.do(t, "GET", "/api/vendors"+query, b.A.ViewerToken, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("list %s = %d %s", query, res.Status, res.Body)
		}
		var l vendorListJSON
		res.decode(t, &l)
		return l
	}
	vids := func(l vendorListJSON) []int64 {
		out := []int64{}
		for _, v := range l.Data {
			out = append(out, v.ID)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		meta  listMetaJSON
		want  []int64
	}{
		{"", listMetaJSON{1, 25, 5}, all},
		{"?per_page=2", listMetaJSON{1, 2, 5}, all[:2]},
		{"?per_page=2&page=3", listMetaJSON{3, 2, 5}, all[4:]},
		{"?per_page=2&page=9", listMetaJSON{9, 2, 5}, []int64{}},
		{"?status=archived", listMetaJSON{1, 25, 1}, []int64{created[0]}},
		{"?status=active", listMetaJSON{1, 25, 4}, []int64{created[2], created[1], b.A.Vendor2.ID, b.A.Vendor.ID}},
	} {
		l := list(tc.query)
		if l.Meta != tc.meta || !slices.Equal(vids(l), tc.want) {
			t.Errorf("list %s = meta %+v ids %v, want %+v %v", tc.query, l.Meta, vids(l), tc.meta, tc.want)
		}
	}
	if l := list(""); l.Data[0].Balance != "0.00" || l.Data[0].Name != "Vendor 2" {
		t.Errorf("first entry = %+v", l.Data[0])
	}
	for _, tc := range []struct{ query, field string }{
		{"?per_page=101", "per_page"},
		{"?page=0", "page"},
		{"?status=deleted", "status"},
	} {
		wantProblem(t, b.do(t, "GET", "/api/vendors"+tc.query, b.A.AdminToken, nil), http.StatusUnprocessableEntity, tc.field)
	}
}

// createUser adds a user of the role to the tenant and returns its token.
func (b *testBundle) createUser(t testing.TB, f tenantFixture, role string) string {
	t.Helper()
	u, err := store.CreateUser(t.Context(), b.db, store.User{TenantID: f.Tenant.ID, Email: fmt.Sprintf("%s-%d@tenant.test", role, f.Tenant.ID),
		PasswordHash: passwordHash(), Role: role})
	if err != nil {
		t.Fatalf("create %s user: %v", role, err)
	}
	return b.token(t, u)
}

// Length limits are announced in characters ("must be at most 200
// characters") and the columns are VARCHAR(n) in utf8mb4, which count
// characters; a name in a non-Latin script that fits must be accepted.
func TestTextLimitsCountCharactersNotBytes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := strings.Repeat("日", 150) // 150 characters, 450 bytes
	res := b.do(t, "POST", "/api/vendors", b.A.AdminToken, obj{"name": name})
	if res.Status != http.StatusCreated {
		t.Errorf("vendor name of 150 characters (450 bytes) = %d %s, want 201", res.Status, res.Body)
	} else if got := b.queryString(t, `SELECT name FROM vendors WHERE tenant_id = ? AND name = ?`, b.A.Tenant.ID, name); got != name {
		t.Errorf("stored name %q", got)
	}
	wantProblem(t, b.do(t, "POST", "/api/vendors", b.A.AdminToken, obj{"name": strings.Repeat("日", 201)}), http.StatusUnprocessableEntity, "name")

	desc := strings.Repeat("é", 300) // 300 characters, 600 bytes
	res = b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, obj{"vendor_id": b.A.Vendor.ID, "currency": "EUR",
		"items": []obj{{"description": desc, "quantity": "1", "unit_price": "1.00"}}})
	if res.Status != http.StatusCreated {
		t.Errorf("item description of 300 characters (600 bytes) = %d %s, want 201", res.Status, res.Body)
	}
}
