package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

type vendorRequest struct {
	Name    string `json:"name"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
}

type vendorPatchRequest struct {
	Name    *string `json:"name"`
	Email   *string `json:"email"`
	Phone   *string `json:"phone"`
	Address *string `json:"address"`
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

type vendorDeleteResponse struct {
	ID       int64 `json:"id"`
	Deleted  bool  `json:"deleted"`
	Archived bool  `json:"archived"`
}

func toVendor(v store.Vendor) vendorResponse {
	return vendorResponse{ID: v.ID, Name: v.Name, Email: v.Email, Phone: v.Phone, Address: v.Address,
		Balance: v.Balance.StringFixed(2), Status: v.Status, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
}

func checkVendorFields(v *validator, name, email, phone, address *string) {
	if name != nil {
		*name = strings.TrimSpace(*name)
		v.check(*name != "", "name", "is required")
		v.check(utf8.RuneCountInString(*name) <= 200, "name", "must be at most 200 characters")
	}
	if email != nil {
		*email = strings.TrimSpace(*email)
		if *email != "" {
			a, err := mail.ParseAddress(*email)
			v.check(err == nil && a.Address == *email && len(*email) <= 254, "email", "must be an email address")
		}
	}
	if phone != nil {
		v.check(utf8.RuneCountInString(*phone) <= 50, "phone", "must be at most 50 characters")
	}
	if address != nil {
		v.check(utf8.RuneCountInString(*address) <= 1000, "address", "must be at most 1000 characters")
	}
}

func vendorNameTaken() error {
	return errValidation([]FieldError{{Field: "name", Message: "a vendor with this name already exists"}})
}

func (s *Server) createVendor(c *fiber.Ctx) error {
	var req vendorRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	checkVendorFields(&v, &req.Name, &req.Email, &req.Phone, &req.Address)
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		vd, ev, err := store.CreateVendorRecorded(ctx, tx, store.Vendor{TenantID: p.TenantID, Name: req.Name, Email: req.Email, Phone: req.Phone, Address: req.Address},
			p.UserID, requestID(c))
		if errors.Is(err, store.ErrConflict) {
			return result{}, vendorNameTaken()
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusCreated, body: toVendor(vd), location: "/api/vendors/" + itoa(vd.ID), events: []store.Event{ev}}, nil
	})
}

func (s *Server) updateVendor(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "vendor")
	if err != nil {
		return err
	}
	var req vendorPatchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	checkVendorFields(&v, req.Name, req.Email, req.Phone, req.Address)
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		vd, ev, err := store.UpdateVendor(ctx, tx, p.TenantID, id, store.VendorPatch{Name: req.Name, Email: req.Email, Phone: req.Phone, Address: req.Address},
			p.UserID, requestID(c))
		switch {
		case errors.Is(err, store.ErrNotFound):
			return result{}, errNotFound("vendor")
		case errors.Is(err, store.ErrConflict) && req.Name != nil && !strings.Contains(err.Error(), "archived"):
			return result{}, vendorNameTaken()
		case errors.Is(err, store.ErrConflict):
			return result{}, errConflict("the vendor is archived")
		case err != nil:
			return result{}, err
		}
		return result{status: fiber.StatusOK, body: toVendor(vd), events: []store.Event{ev}}, nil
	})
}

func (s *Server) deleteVendor(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "vendor")
	if err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		archived, ev, err := store.RemoveVendor(ctx, tx, p.TenantID, id, p.UserID, requestID(c))
		if errors.Is(err, store.ErrNotFound) {
			return result{}, errNotFound("vendor")
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusOK, body: vendorDeleteResponse{ID: id, Deleted: !archived, Archived: archived}, events: []store.Event{ev}}, nil
	})
}

func (s *Server) getVendor(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "vendor")
	if err != nil {
		return err
	}
	p := principal(c)
	if p.VendorID != 0 && p.VendorID != id {
		return errNotFound("vendor")
	}
	return s.cachedRead(c, p.TenantID, fmt.Sprintf("vendor:%d", id), func(ctx context.Context) (any, error) {
		v, err := store.GetVendor(ctx, s.db, p.TenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("vendor")
		}
		if err != nil {
			return nil, err
		}
		return toVendor(v), nil
	})
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

func newList[T, S any](items []S, total, page, perPage int, conv func(S) T) listResponse[T] {
	out := listResponse[T]{Data: make([]T, 0, len(items)), Meta: listMeta{page, perPage, total}}
	for _, it := range items {
		out.Data = append(out.Data, conv(it))
	}
	return out
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
	p := principal(c)
	return s.cachedRead(c, p.TenantID, fmt.Sprintf("vendors:%d:%d:%s", page, perPage, status), func(ctx context.Context) (any, error) {
		vs, total, err := store.ListVendors(ctx, s.db, p.TenantID, store.VendorFilter{Status: status, Page: store.Page{Number: page, Size: perPage}})
		if err != nil {
			return nil, err
		}
		return newList(vs, total, page, perPage, toVendor), nil
	})
}
