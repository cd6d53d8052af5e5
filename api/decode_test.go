package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// wantProblemErr asserts err is a *Problem of one of the statuses.
func wantProblemErr(t *testing.T, err error, statuses ...int) *Problem {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("error %v (%T) is not a *Problem", err, err)
	}
	for _, s := range statuses {
		if p.Status == s {
			return p
		}
	}
	t.Fatalf("problem status %d (%v), want one of %v", p.Status, p, statuses)
	return nil
}

func FuzzDecodePurchaseOrder(f *testing.F) {
	for _, s := range []string{
		`{"vendor_id":1,"currency":"EUR","items":[{"description":"Widget","quantity":"1.5","unit_price":12.5}]}`,
		`{"vendor_id":1,"currency":"EUR","notes":"n","items":[{"description":"a","quantity":2,"unit_price":"0.10"},{"description":"b","quantity":"0.005","unit_price":"1"}]}`,
		`{"vendor_id":1,"currency":"eur","items":[]}`,
		`{"vendor_id":-1,"currency":"EUR","items":[{"description":"","quantity":"-1","unit_price":"1.001"}]}`,
		`{"vendor_id":1,"currency":"EUR","items":[{"description":"x","quantity":"1e3","unit_price":"abc"}]}`,
		`{"vendor_id":1,"currency":"EUR","items":[{"description":"x","quantity":"999999999.999","unit_price":"9999999999.99"}]}`,
		`{"vendor_id":1,"currency":"EUR","items":[{"description":"x","quantity":"1","unit_price":"\u0031\u0030"}]}`,
		`{"vendor_id":1,"currency":"EUR","items":[null,{"quantity":{},"unit_price":[]}]}`,
		`{"vendor_id":1,"tenant_id":2}`,
		`{"vendor_id":"1"}`,
		`{"items":{}}`,
		`{"vendor_id":1} trailing`,
		`{"vendor_id":1}{}`,
		`{"vendor_id":`,
		`[]`, `null`, `""`, ``, ` `, `{}`, `{"items":[{"sku":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req poRequest
		if err := decodeStrict(body, &req); err != nil {
			wantProblemErr(t, err, http.StatusBadRequest, http.StatusUnprocessableEntity)
			return
		}
		in, err := req.toNew(500)
		if err != nil {
			p := wantProblemErr(t, err, http.StatusUnprocessableEntity)
			if len(p.Errors) == 0 {
				t.Fatalf("validation problem without field errors: %v", p)
			}
			return
		}
		// Whatever is accepted is storable.
		if in.VendorID <= 0 || !validCurrency(in.Currency) || len(in.Notes) > 2000 {
			t.Fatalf("accepted order %+v", in)
		}
		if len(in.Items) == 0 || len(in.Items) > 500 {
			t.Fatalf("accepted %d items", len(in.Items))
		}
		total := decimal.Zero
		for i, it := range in.Items {
			if strings.TrimSpace(it.Description) != it.Description || it.Description == "" || len(it.Description) > 500 {
				t.Fatalf("item %d description %q", i, it.Description)
			}
			if !it.Quantity.IsPositive() || !it.Quantity.Equal(it.Quantity.Round(3)) || it.Quantity.GreaterThanOrEqual(maxQuantity) {
				t.Fatalf("item %d quantity %s", i, it.Quantity)
			}
			if it.UnitPrice.IsNegative() || it.UnitPrice.Exponent() < -2 || it.UnitPrice.GreaterThanOrEqual(maxUnitPrice) {
				t.Fatalf("item %d unit price %s (exponent %d)", i, it.UnitPrice, it.UnitPrice.Exponent())
			}
			total = total.Add(store.LineTotal(it.Quantity, it.UnitPrice))
		}
		if total.GreaterThanOrEqual(maxTotal) {
			t.Fatalf("accepted total %s overflows DECIMAL(14,2)", total)
		}
	})
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{
		`"125.50"`, `125.5`, `0`, `"0"`, `-1`, `"-0.01"`, `"10.005"`, `10.005`, `"10.500"`, `"abc"`, `""`, `null`,
		`"1e3"`, `1E-2`, `" 5 "`, `"+5"`, `".5"`, `"5."`, `"NaN"`, `"Infinity"`, `"\u0031"`, `"\/"`, `true`, `{}`, `[]`,
		`"99999999999999999999999999999999999999.99"`, `"0.0000000000000000000000000000000000001"`, `"`, `"\"`, `-`, `.`, `"-"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := ParseMoney(json.RawMessage(raw))
		if err != nil {
			return
		}
		if d.Exponent() < -2 {
			t.Fatalf("ParseMoney(%q) = %s with %d decimals", raw, d, -d.Exponent())
		}
		s := d.StringFixed(2)
		back, err := decimal.NewFromString(s)
		if err != nil || !back.Equal(d) {
			t.Fatalf("ParseMoney(%q) = %s does not round-trip via %q (%v)", raw, d, s, err)
		}
		// Accepted money loses nothing: the input's value is exactly d.
		in, ok := parseDecimal(json.RawMessage(raw))
		if !ok || !in.Equal(d) {
			t.Fatalf("ParseMoney(%q) = %s, but the input is %s", raw, d, in)
		}
		// And the canonical form is accepted again, as a string and as a number.
		for _, again := range []string{`"` + s + `"`, s} {
			d2, err := ParseMoney(json.RawMessage(again))
			if err != nil || !d2.Equal(d) {
				t.Fatalf("ParseMoney(%q) = %s, %v; want %s", again, d2, err, d)
			}
		}
	})
}

// FuzzPageParams sends random pagination and filter parameters to the real
// list endpoints: the answer is never a 5xx, and a 200 honours the limits.
func FuzzPageParams(f *testing.F) {
	db := storetest.NewDB(f)
	ten := storetest.Tenant(f, db, "fuzz")
	v := storetest.Vendor(f, db, ten.ID, "Fuzz Vendor")
	for range 3 {
		storetest.PurchaseOrder(f, db, ten.ID, v.ID, 1)
	}
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // unused by the list endpoints
	f.Cleanup(func() { _ = dead.Close() })
	s := New(Config{JWTSecret: []byte("iacc-api-fuzz-secret-0123456789abcdef")},
		Deps{DB: db, Redis: dead, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Cleanup(s.Close)
	tok, err := s.IssueToken(Principal{UserID: 1, TenantID: ten.ID, Role: store.RoleAdmin})
	if err != nil {
		f.Fatal(err)
	}
	vtok, err := s.IssueToken(Principal{UserID: 2, TenantID: ten.ID, Role: store.RoleVendor, VendorID: v.ID})
	if err != nil {
		f.Fatal(err)
	}

	f.Add("1", "25", "", "", false)
	f.Add("2", "100", "submitted", "1", false)
	f.Add("0", "101", "bogus", "-1", true)
	f.Add("99999999999999999999", "1", "approved", "abc", false)
	f.Add("1000000", "100", "", "9223372036854775807", true)
	f.Add("-1", "0", "\x00", "0", false)
	f.Add(" 1", "1e2", "submitted&page=2", "1 OR 1=1", true)
	f.Fuzz(func(t *testing.T, page, perPage, status, vendorID string, asVendor bool) {
		q := url.Values{}
		for k, v := range map[string]string{"page": page, "per_page": perPage, "status": status, "vendor_id": vendorID} {
			if len(v) > 200 { // keep the request line within the server's 4 KiB header buffer
				v = v[:200]
			}
			if v != "" {
				q.Set(k, v)
			}
		}
		token := tok
		if asVendor {
			token = vtok
		}
		for _, p := range []string{"/api/purchase-orders", "/api/vendors"} {
			req := httptest.NewRequest("GET", p+"?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := s.App().Test(req, 5000)
			if err != nil {
				t.Fatalf("GET %s?%s: %v", p, q.Encode(), err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			switch {
			case res.StatusCode >= 500:
				t.Fatalf("GET %s?%s = %d %s", p, q.Encode(), res.StatusCode, body)
			case res.StatusCode == http.StatusOK:
				var l struct {
					Data []json.RawMessage `json:"data"`
					Meta struct {
						Page    int `json:"page"`
						PerPage int `json:"per_page"`
						Total   int `json:"total"`
					} `json:"meta"`
				}
				if err := json.Unmarshal(body, &l); err != nil {
					t.Fatalf("GET %s?%s: %v in %s", p, q.Encode(), err, body)
				}
				if l.Data == nil || l.Meta.Page < 1 || l.Meta.PerPage < 1 || l.Meta.PerPage > 100 || len(l.Data) > l.Meta.PerPage || l.Meta.Total < 0 {
					t.Fatalf("GET %s?%s = %s", p, q.Encode(), body)
				}
			case res.StatusCode == http.StatusForbidden && asVendor && p == "/api/vendors":
			default:
				if res.StatusCode != http.StatusUnprocessableEntity || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
					t.Fatalf("GET %s?%s = %d %s %s", p, q.Encode(), res.StatusCode, res.Header.Get("Content-Type"), body)
				}
			}
		}
	})
}
