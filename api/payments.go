package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

type paymentRequest struct {
	InvoiceID int64           `json:"invoice_id"`
	Amount    json.RawMessage `json:"amount"`
	PaidAt    string          `json:"paid_at"` // RFC 3339; defaults to now
	Reference string          `json:"reference"`
}

type paymentResponse struct {
	ID        int64     `json:"id"`
	InvoiceID int64     `json:"invoice_id"`
	VendorID  int64     `json:"vendor_id"`
	Amount    string    `json:"amount"`
	Currency  string    `json:"currency"`
	PaidAt    time.Time `json:"paid_at"`
	Reference string    `json:"reference"`
	CreatedAt time.Time `json:"created_at"`
	// Invoice is the invoice after the payment (on creation only).
	Invoice *invoiceResponse `json:"invoice,omitempty"`
}

func toPayment(p store.Payment) paymentResponse {
	return paymentResponse{ID: p.ID, InvoiceID: p.InvoiceID, VendorID: p.VendorID, Amount: p.Amount.StringFixed(2), Currency: p.Currency,
		PaidAt: p.PaidAt, Reference: p.Reference, CreatedAt: p.CreatedAt}
}

func (s *Server) createPayment(c *fiber.Ctx) error {
	var req paymentRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	v.check(req.InvoiceID > 0, "invoice_id", "is required and must be a positive id")
	amount, err := ParseMoney(req.Amount)
	switch {
	case err != nil:
		v.add("amount", err.Error())
	case !amount.IsPositive():
		v.add("amount", "must be greater than 0")
	case amount.GreaterThanOrEqual(maxTotal):
		v.add("amount", "is too large")
	}
	paidAt := time.Now().UTC()
	if req.PaidAt != "" {
		t, err := time.Parse(time.RFC3339, req.PaidAt)
		v.check(err == nil && t.Year() >= 2000 && t.Year() <= 2999, "paid_at", "must be an RFC 3339 time such as 2026-11-25T10:00:00Z")
		paidAt = t
	}
	req.Reference = strings.TrimSpace(req.Reference)
	v.check(utf8.RuneCountInString(req.Reference) <= 100, "reference", "must be at most 100 characters")
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		pay, inv, ev, err := store.RecordPayment(ctx, tx, store.NewPayment{TenantID: p.TenantID, InvoiceID: req.InvoiceID, Amount: amount, PaidAt: paidAt,
			Reference: req.Reference, CreatedBy: p.UserID, RequestID: requestID(c)})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return result{}, errValidation([]FieldError{{Field: "invoice_id", Message: "no such invoice"}})
		case errors.Is(err, store.ErrOverpayment):
			return result{}, errValidation([]FieldError{{Field: "amount", Message: "exceeds the invoice's outstanding amount"}})
		case err != nil:
			return result{}, err
		}
		out := toPayment(pay)
		ir := toInvoice(inv)
		out.Invoice = &ir
		return result{status: fiber.StatusCreated, body: out, location: "/api/payments/" + itoa(pay.ID), events: []store.Event{ev}}, nil
	})
}

func (s *Server) getPayment(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	pay, err := loadScoped(ctx, c, s.db, "payment", store.GetPayment, func(p store.Payment) int64 { return p.VendorID })
	if err != nil {
		return err
	}
	return c.JSON(toPayment(pay))
}

func (s *Server) listPayments(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	var v validator
	f := store.PaymentFilter{Page: store.Page{Number: page, Size: perPage}}
	f.VendorID = queryID(c, &v, "vendor_id")
	f.InvoiceID = queryID(c, &v, "invoice_id")
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	var nothing bool
	if f.VendorID, nothing = scopeVendorFilter(p, f.VendorID); nothing {
		return c.JSON(listResponse[paymentResponse]{Data: []paymentResponse{}, Meta: listMeta{page, perPage, 0}})
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	items, total, err := store.ListPayments(ctx, s.db, p.TenantID, f)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, total, page, perPage, toPayment))
}
