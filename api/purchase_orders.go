package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
)

type poItemRequest struct {
	Description string          `json:"description"`
	Quantity    json.RawMessage `json:"quantity"`
	UnitPrice   json.RawMessage `json:"unit_price"`
}

type poRequest struct {
	VendorID int64           `json:"vendor_id"`
	Currency string          `json:"currency"`
	Notes    string          `json:"notes"`
	Items    []poItemRequest `json:"items"`
}

type poItemResponse struct {
	LineNo      int    `json:"line_no"`
	Description string `json:"description"`
	Quantity    string `json:"quantity"`
	UnitPrice   string `json:"unit_price"`
	LineTotal   string `json:"line_total"`
}

type vendorRef struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type poResponse struct {
	ID          int64            `json:"id"`
	Number      string           `json:"number"`
	Status      string           `json:"status"`
	VendorID    int64            `json:"vendor_id"`
	Vendor      *vendorRef       `json:"vendor,omitempty"`
	Currency    string           `json:"currency"`
	Notes       string           `json:"notes"`
	TotalAmount string           `json:"total_amount"`
	Version     int              `json:"version"`
	Items       []poItemResponse `json:"items,omitempty"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

func toPO(po store.PurchaseOrder) poResponse {
	out := poResponse{ID: po.ID, Number: po.Number(), Status: po.Status, VendorID: po.VendorID, Currency: po.Currency,
		Notes: po.Notes, TotalAmount: po.TotalAmount.StringFixed(2), Version: po.Version, CreatedAt: po.CreatedAt, UpdatedAt: po.UpdatedAt}
	for _, it := range po.Items {
		out.Items = append(out.Items, poItemResponse{LineNo: it.LineNo, Description: it.Description, Quantity: it.Quantity.String(),
			UnitPrice: it.UnitPrice.StringFixed(2), LineTotal: it.LineTotal.StringFixed(2)})
	}
	return out
}

var (
	maxUnitPrice = decimal.New(1, 10) // 10 000 000 000.00
	maxQuantity  = decimal.New(1, 9)
	maxTotal     = decimal.New(1, 12) // DECIMAL(14,2)
)

// parseDecimal reads a JSON number or a JSON string holding a decimal.
func parseDecimal(raw json.RawMessage) (decimal.Decimal, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return decimal.Decimal{}, false
	}
	if s[0] == '"' {
		u, err := strconv.Unquote(s)
		if err != nil {
			return decimal.Decimal{}, false
		}
		s = strings.TrimSpace(u)
	}
	// The text length bounds the parsing work; the value bound keeps every
	// accepted number's canonical form (StringFixed) acceptable again.
	if s == "" || strings.ContainsAny(s, "eE") || len(s) > 64 {
		return decimal.Decimal{}, false
	}
	d, err := decimal.NewFromString(s)
	if err != nil || d.Abs().GreaterThanOrEqual(maxDecimal) {
		return decimal.Decimal{}, false
	}
	return d, true
}

// maxDecimal bounds any decimal the API reads (far above every money and
// quantity limit, which the callers check with their own messages).
var maxDecimal = decimal.New(1, 18)

// ParseMoney parses an amount with at most two decimals, as the API accepts it.
func ParseMoney(raw json.RawMessage) (decimal.Decimal, error) {
	d, ok := parseDecimal(raw)
	if !ok {
		return d, errors.New("must be a decimal number such as \"125.50\"")
	}
	if d.Exponent() < -2 && !d.Equal(d.Round(2)) {
		return d, errors.New("must have at most 2 decimal places")
	}
	return d.Round(2), nil
}

func (r *poRequest) toNew(maxItems int) (store.NewPurchaseOrder, error) {
	var v validator
	v.check(r.VendorID > 0, "vendor_id", "is required and must be a positive id")
	r.Currency = strings.TrimSpace(r.Currency)
	v.check(validCurrency(r.Currency), "currency", "is required: an ISO 4217 code such as EUR")
	v.check(utf8.RuneCountInString(r.Notes) <= 2000, "notes", "must be at most 2000 characters")
	switch {
	case len(r.Items) == 0:
		v.add("items", "must hold at least one item")
	case len(r.Items) > maxItems:
		v.add("items", fmt.Sprintf("must hold at most %d items", maxItems))
	}
	out := store.NewPurchaseOrder{VendorID: r.VendorID, Currency: r.Currency, Notes: r.Notes}
	total := decimal.Zero
	if len(r.Items) <= maxItems {
		for i, it := range r.Items {
			f := fmt.Sprintf("items[%d].", i)
			desc := strings.TrimSpace(it.Description)
			v.check(desc != "", f+"description", "is required")
			v.check(utf8.RuneCountInString(desc) <= 500, f+"description", "must be at most 500 characters")
			qty, ok := parseDecimal(it.Quantity)
			switch {
			case !ok:
				v.add(f+"quantity", "is required: a number greater than 0")
			case !qty.IsPositive():
				v.add(f+"quantity", "must be greater than 0")
			case !qty.Equal(qty.Round(3)):
				v.add(f+"quantity", "must have at most 3 decimal places")
			case qty.GreaterThanOrEqual(maxQuantity):
				v.add(f+"quantity", "is too large")
			}
			price, err := ParseMoney(it.UnitPrice)
			switch {
			case err != nil:
				v.add(f+"unit_price", err.Error())
			case price.IsNegative():
				v.add(f+"unit_price", "must not be negative")
			case price.GreaterThanOrEqual(maxUnitPrice):
				v.add(f+"unit_price", "is too large")
			}
			item := store.PurchaseOrderItem{Description: desc, Quantity: qty, UnitPrice: price}
			total = total.Add(store.LineTotal(qty, price))
			out.Items = append(out.Items, item)
		}
	}
	if len(v.errs) == 0 && total.GreaterThanOrEqual(maxTotal) {
		v.add("items", "the order total is too large")
	}
	return out, v.err()
}

func validCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

func (s *Server) createPurchaseOrder(c *fiber.Ctx) error {
	var req poRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.toNew(s.cfg.MaxItems)
	if err != nil {
		return err
	}
	p := principal(c)
	in.TenantID, in.CreatedBy, in.RequestID = p.TenantID, p.UserID, requestID(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		created, err := store.CreatePurchaseOrder(ctx, tx, in)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return result{}, errValidation([]FieldError{{Field: "vendor_id", Message: "no such vendor"}})
		case errors.Is(err, store.ErrConflict):
			return result{}, errValidation([]FieldError{{Field: "vendor_id", Message: "the vendor is archived"}})
		case err != nil:
			return result{}, err
		}
		return result{status: fiber.StatusCreated, body: toPO(created.Order), location: "/api/purchase-orders/" + itoa(created.Order.ID),
			events: []store.Event{created.Event}}, nil
	})
}

// loadPO loads an order the caller may see: another tenant's order, or
// another vendor's for a vendor user, is 404.
func (s *Server) loadPO(ctx context.Context, c *fiber.Ctx) (store.PurchaseOrder, error) {
	return loadScoped(ctx, c, s.db, "purchase order", store.GetPurchaseOrder, func(po store.PurchaseOrder) int64 { return po.VendorID })
}

func (s *Server) getPurchaseOrder(c *fiber.Ctx) error {
	p := principal(c)
	return s.cachedRead(c, p.TenantID, "po:"+c.Params("id")+":"+scopeKey(p), func(ctx context.Context) (any, error) {
		po, err := s.loadPO(ctx, c)
		if err != nil {
			return nil, err
		}
		v, err := store.GetVendor(ctx, s.db, po.TenantID, po.VendorID)
		if err != nil {
			return nil, err
		}
		out := toPO(po)
		out.Vendor = &vendorRef{ID: v.ID, Name: v.Name, Email: v.Email}
		return out, nil
	})
}

func (s *Server) listPurchaseOrders(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	var v validator
	f := store.PurchaseOrderFilter{Status: c.Query("status"), Page: store.Page{Number: page, Size: perPage}}
	switch f.Status {
	case "", store.POSubmitted, store.POApproved, store.POReceived, store.POClosed, store.POCancelled:
	default:
		v.add("status", "must be one of submitted, approved, received, closed, cancelled")
	}
	f.VendorID = queryID(c, &v, "vendor_id")
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	var nothing bool
	if f.VendorID, nothing = scopeVendorFilter(p, f.VendorID); nothing {
		return c.JSON(listResponse[poResponse]{Data: []poResponse{}, Meta: listMeta{page, perPage, 0}})
	}
	key := fmt.Sprintf("pos:%s:%d:%d:%s:%d", scopeKey(p), page, perPage, f.Status, f.VendorID)
	return s.cachedRead(c, p.TenantID, key, func(ctx context.Context) (any, error) {
		pos, total, err := store.ListPurchaseOrders(ctx, s.db, p.TenantID, f)
		if err != nil {
			return nil, err
		}
		out := listResponse[poResponse]{Data: make([]poResponse, 0, len(pos)), Meta: listMeta{page, perPage, total}}
		for _, po := range pos {
			out.Data = append(out.Data, toPO(po))
		}
		return out, nil
	})
}

// transition serves POST /api/purchase-orders/:id/<action>.
func (s *Server) transition(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := idParam(c, "id", "purchase order")
		if err != nil {
			return err
		}
		p := principal(c)
		return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
			t, err := store.TransitionPurchaseOrder(ctx, tx, p.TenantID, id, action, p.UserID, requestID(c))
			switch {
			case errors.Is(err, store.ErrNotFound):
				return result{}, errNotFound("purchase order")
			case errors.Is(err, store.ErrIllegalTransition):
				return result{}, errConflict(strings.TrimSuffix(err.Error(), ": "+store.ErrIllegalTransition.Error()))
			case err != nil:
				return result{}, err
			}
			po, err := store.GetPurchaseOrder(ctx, tx, p.TenantID, id)
			if err != nil {
				return result{}, err
			}
			return result{status: fiber.StatusOK, body: toPO(po), events: []store.Event{t.Event}}, nil
		})
	}
}

type taskRunResponse struct {
	TaskID    string    `json:"task_id"`
	Type      string    `json:"type"`
	Queue     string    `json:"queue"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

type activityEvent struct {
	ID            int64             `json:"id"`
	Type          string            `json:"type"`
	AggregateType string            `json:"aggregate_type"`
	AggregateID   int64             `json:"aggregate_id"`
	CreatedAt     time.Time         `json:"created_at"`
	PublishedAt   *time.Time        `json:"published_at"`
	DispatchedAt  *time.Time        `json:"dispatched_at"`
	Tasks         []taskRunResponse `json:"tasks"`
}

type activityResponse struct {
	PurchaseOrderID int64           `json:"purchase_order_id"`
	Number          string          `json:"number"`
	Events          []activityEvent `json:"events"`
}

// purchaseOrderActivity is the order's timeline: the events of the order,
// its invoices and payments, each with the tasks it caused.
func (s *Server) purchaseOrderActivity(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	po, err := s.loadPO(ctx, c)
	if err != nil {
		return err
	}
	events, err := store.ListPurchaseOrderTimeline(ctx, s.db, po.TenantID, po.ID)
	if err != nil {
		return err
	}
	ids := make([]int64, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	runs, err := store.ListTaskRunsOfEvents(ctx, s.db, ids)
	if err != nil {
		return err
	}
	byEvent := map[int64][]taskRunResponse{}
	for _, r := range runs {
		byEvent[r.EventID] = append(byEvent[r.EventID], taskRunResponse{TaskID: r.TaskID, Type: r.TaskType, Queue: r.Queue,
			State: r.State, Attempts: r.Attempts, LastError: r.LastError, UpdatedAt: r.UpdatedAt})
	}
	out := activityResponse{PurchaseOrderID: po.ID, Number: po.Number(), Events: make([]activityEvent, 0, len(events))}
	for _, e := range events {
		tasks := byEvent[e.ID]
		if tasks == nil {
			tasks = []taskRunResponse{}
		}
		out.Events = append(out.Events, activityEvent{ID: e.ID, Type: e.Type, AggregateType: e.AggregateType, AggregateID: e.AggregateID,
			CreatedAt: e.CreatedAt, PublishedAt: e.PublishedAt, DispatchedAt: e.DispatchedAt, Tasks: tasks})
	}
	return c.JSON(out)
}

// getPurchaseOrderPDF streams the rendered PDF of the order's current
// version, or answers 202 with Retry-After while it is being rendered.
func (s *Server) getPurchaseOrderPDF(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	po, err := s.loadPO(ctx, c)
	if err != nil {
		return err
	}
	return s.sendDocument(ctx, c, po.TenantID, store.DocPurchaseOrder, po.ID, po.Version, po.Number())
}

// sendDocument streams a rendered document, or answers 202 with Retry-After
// while it is being rendered.
func (s *Server) sendDocument(ctx context.Context, c *fiber.Ctx, tenantID int64, kind string, id int64, version int, name string) error {
	doc, err := store.GetDocument(ctx, s.db, tenantID, kind, id, version)
	if errors.Is(err, store.ErrNotFound) {
		c.Set(fiber.HeaderRetryAfter, "2")
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "pending", "detail": "the PDF is being rendered; retry shortly"})
	}
	if err != nil {
		return err
	}
	rc, err := s.blobs.Open(ctx, doc.BlobKey)
	if err != nil {
		return fmt.Errorf("open PDF of %s: %w", name, err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read PDF of %s: %w", name, err)
	}
	c.Set(fiber.HeaderContentType, "application/pdf")
	c.Set(fiber.HeaderContentDisposition, `inline; filename="`+name+`.pdf"`)
	c.Set(fiber.HeaderETag, `"`+doc.SHA256+`"`)
	return c.Send(body)
}
