package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
)

type invoiceRequest struct {
	PurchaseOrderID int64           `json:"purchase_order_id"`
	Amount          json.RawMessage `json:"amount"` // optional: defaults to what is not invoiced yet
	VendorReference string          `json:"vendor_reference"`
	DueDate         string          `json:"due_date"` // YYYY-MM-DD; defaults to 30 days from today
}

type invoiceResponse struct {
	ID              int64     `json:"id"`
	Number          string    `json:"number"`
	PurchaseOrderID int64     `json:"purchase_order_id"`
	VendorID        int64     `json:"vendor_id"`
	VendorReference string    `json:"vendor_reference"`
	Status          string    `json:"status"`
	Currency        string    `json:"currency"`
	Amount          string    `json:"amount"`
	PaidAmount      string    `json:"paid_amount"`
	Outstanding     string    `json:"outstanding"`
	DueDate         string    `json:"due_date"`
	Version         int       `json:"version"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func toInvoice(i store.Invoice) invoiceResponse {
	return invoiceResponse{ID: i.ID, Number: i.Number(), PurchaseOrderID: i.PurchaseOrderID, VendorID: i.VendorID, VendorReference: i.VendorReference,
		Status: i.Status, Currency: i.Currency, Amount: i.Amount.StringFixed(2), PaidAmount: i.PaidAmount.StringFixed(2),
		Outstanding: i.Outstanding().StringFixed(2), DueDate: i.DueDate.Format(time.DateOnly), Version: i.Version, CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt}
}

func (s *Server) createInvoice(c *fiber.Ctx) error {
	var req invoiceRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	v.check(req.PurchaseOrderID > 0, "purchase_order_id", "is required and must be a positive id")
	amount := decimal.Zero
	if len(req.Amount) > 0 && string(req.Amount) != "null" {
		a, err := ParseMoney(req.Amount)
		switch {
		case err != nil:
			v.add("amount", err.Error())
		case !a.IsPositive():
			v.add("amount", "must be greater than 0")
		case a.GreaterThanOrEqual(maxTotal):
			v.add("amount", "is too large")
		}
		amount = a
	}
	req.VendorReference = strings.TrimSpace(req.VendorReference)
	v.check(utf8.RuneCountInString(req.VendorReference) <= 100, "vendor_reference", "must be at most 100 characters")
	due := time.Now().UTC().AddDate(0, 0, 30)
	if req.DueDate != "" {
		d, err := time.Parse(time.DateOnly, req.DueDate)
		v.check(err == nil && d.Year() >= 2000 && d.Year() <= 2999, "due_date", "must be a date such as 2026-12-31")
		due = d
	}
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		inv, ev, err := store.CreateInvoice(ctx, tx, store.NewInvoice{TenantID: p.TenantID, PurchaseOrderID: req.PurchaseOrderID, VendorID: p.VendorID,
			Amount: amount, VendorReference: req.VendorReference, DueDate: due, CreatedBy: p.UserID, RequestID: requestID(c)})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return result{}, errValidation([]FieldError{{Field: "purchase_order_id", Message: "no such purchase order"}})
		case errors.Is(err, store.ErrOrderNotInvoiceable):
			return result{}, errConflict(store.ErrOrderNotInvoiceable.Error())
		case errors.Is(err, store.ErrOverInvoiced):
			return result{}, errValidation([]FieldError{{Field: "amount", Message: "exceeds what is not invoiced yet on the purchase order"}})
		case err != nil:
			return result{}, err
		}
		return result{status: fiber.StatusCreated, body: toInvoice(inv), location: "/api/invoices/" + itoa(inv.ID), events: []store.Event{ev}}, nil
	})
}

func (s *Server) loadInvoice(ctx context.Context, c *fiber.Ctx) (store.Invoice, error) {
	return loadScoped(ctx, c, s.db, "invoice", store.GetInvoice, func(i store.Invoice) int64 { return i.VendorID })
}

func (s *Server) getInvoice(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	inv, err := s.loadInvoice(ctx, c)
	if err != nil {
		return err
	}
	return c.JSON(toInvoice(inv))
}

func (s *Server) getInvoicePDF(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	inv, err := s.loadInvoice(ctx, c)
	if err != nil {
		return err
	}
	return s.sendDocument(ctx, c, inv.TenantID, store.DocInvoice, inv.ID, inv.Version, inv.Number())
}

func (s *Server) listInvoices(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	var v validator
	f := store.InvoiceFilter{Status: c.Query("status"), Page: store.Page{Number: page, Size: perPage}}
	switch f.Status {
	case "", store.InvoiceOpen, store.InvoicePartiallyPaid, store.InvoicePaid:
	default:
		v.add("status", "must be one of open, partially_paid, paid")
	}
	f.VendorID = queryID(c, &v, "vendor_id")
	f.PurchaseOrderID = queryID(c, &v, "purchase_order_id")
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	var nothing bool
	if f.VendorID, nothing = scopeVendorFilter(p, f.VendorID); nothing {
		return c.JSON(listResponse[invoiceResponse]{Data: []invoiceResponse{}, Meta: listMeta{page, perPage, 0}})
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	items, total, err := store.ListInvoices(ctx, s.db, p.TenantID, f)
	if err != nil {
		return fmt.Errorf("list invoices: %w", err)
	}
	return c.JSON(newList(items, total, page, perPage, toInvoice))
}
