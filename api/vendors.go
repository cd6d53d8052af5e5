package api

import (
	"database/sql"
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

type vendorRequest struct {
	Name    string `json:"name"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
}

type vendorResponse struct {
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

func toVendor(v store.Vendor) vendorResponse {
	return vendorResponse{ID: v.ID, Name: v.Name, Email: v.Email, Phone: v.Phone, Address: v.Address,
		Balance: v.Balance.StringFixed(2), Status: v.Status, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
}

func (r *vendorRequest) validate() error {
	var v validator
	r.Name = strings.TrimSpace(r.Name)
	r.Email = strings.TrimSpace(r.Email)
	v.check(r.Name != "", "name", "is required")
	v.check(len(r.Name) <= 200, "name", "must be at most 200 characters")
	if r.Email != "" {
		a, err := mail.ParseAddress(r.Email)
		v.check(err == nil && a.Address == r.Email && len(r.Email) <= 254, "email", "must be an email address")
	}
	v.check(len(r.Phone) <= 50, "phone", "must be at most 50 characters")
	v.check(len(r.Address) <= 1000, "address", "must be at most 1000 characters")
	return v.err()
}

func (s *Server) createVendor(c *fiber.Ctx) error {
	var req vendorRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	p := principal(c)
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	var v store.Vendor
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		v, err = store.CreateVendor(ctx, tx, store.Vendor{TenantID: p.TenantID, Name: req.Name, Email: req.Email, Phone: req.Phone, Address: req.Address})
		if err != nil {
			return err
		}
		return store.InsertAudit(ctx, tx, store.AuditEntry{TenantID: p.TenantID, ActorID: p.UserID, Action: "vendor.create",
			EntityType: "vendor", EntityID: v.ID, After: toVendor(v), RequestID: requestID(c)})
	})
	if errors.Is(err, store.ErrConflict) {
		return errValidation([]FieldError{{Field: "name", Message: "a vendor with this name already exists"}})
	}
	if err != nil {
		return err
	}
	c.Location("/api/vendors/" + itoa(v.ID))
	return c.Status(fiber.StatusCreated).JSON(toVendor(v))
}

func (s *Server) getVendor(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "vendor")
	if err != nil {
		return err
	}
	p := principal(c)
	if p.Role == store.RoleVendor && p.VendorID != id {
		return errNotFound("vendor")
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	v, err := store.GetVendor(ctx, s.db, p.TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("vendor")
	}
	if err != nil {
		return err
	}
	return c.JSON(toVendor(v))
}

type listMeta struct {
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
	Total   int `json:"total"`
}

type listResponse[T any] struct {
	Data []T      `json:"data"`
	Meta listMeta `json:"meta"`
}

func (s *Server) listVendors(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	status := c.Query("status")
	if status != "" && status != store.VendorActive && status != store.VendorArchived {
		return errValidation([]FieldError{{Field: "status", Message: "must be active or archived"}})
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	vs, total, err := store.ListVendors(ctx, s.db, principal(c).TenantID, store.VendorFilter{Status: status, Page: store.Page{Number: page, Size: perPage}})
	if err != nil {
		return err
	}
	out := listResponse[vendorResponse]{Data: make([]vendorResponse, 0, len(vs)), Meta: listMeta{page, perPage, total}}
	for _, v := range vs {
		out.Data = append(out.Data, toVendor(v))
	}
	return c.JSON(out)
}
