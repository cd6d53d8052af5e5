package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
)

type productRequest struct {
	SKU         string          `json:"sku"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	UnitPrice   json.RawMessage `json:"unit_price"`
	Currency    string          `json:"currency"`
}

type productPatchRequest struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	UnitPrice   json.RawMessage `json:"unit_price"`
	Currency    *string         `json:"currency"`
	Active      *bool           `json:"active"`
}

type productResponse struct {
	ID          int64     `json:"id"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	UnitPrice   string    `json:"unit_price"`
	Currency    string    `json:"currency"`
	Active      bool      `json:"active"`
	CreatedAt   time.Time `json:"created_at"`
}

func toProduct(p store.Product) productResponse {
	return productResponse{ID: p.ID, SKU: p.SKU, Name: p.Name, Description: p.Description, UnitPrice: p.UnitPrice.StringFixed(2),
		Currency: p.Currency, Active: p.Active, CreatedAt: p.CreatedAt}
}

// catalogTenant is the tenant whose catalog is asked for: the caller's, or
// for anonymous callers the tenant_id query parameter.
func catalogTenant(c *fiber.Ctx) (int64, bool, error) {
	if p := principal(c); p.TenantID != 0 {
		return p.TenantID, p.Role == store.RoleAdmin, nil
	}
	id, err := strconv.ParseInt(c.Query("tenant_id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, false, errValidation([]FieldError{{Field: "tenant_id", Message: "is required without a token: the tenant whose catalog to show"}})
	}
	return id, false, nil
}

func (s *Server) listProducts(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	tenantID, admin, err := catalogTenant(c)
	if err != nil {
		return err
	}
	// Admins see withdrawn products too; everybody else the active catalog.
	return s.cachedRead(c, tenantID, fmt.Sprintf("products:%t:%d:%d", admin, page, perPage), func(ctx context.Context) (any, error) {
		ps, total, err := store.ListProducts(ctx, s.db, tenantID, store.ProductFilter{ActiveOnly: !admin, Page: store.Page{Number: page, Size: perPage}})
		if err != nil {
			return nil, err
		}
		return newList(ps, total, page, perPage, toProduct), nil
	})
}

func (s *Server) getProduct(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "product")
	if err != nil {
		return err
	}
	tenantID, admin, err := catalogTenant(c)
	if err != nil {
		return err
	}
	return s.cachedRead(c, tenantID, fmt.Sprintf("product:%t:%d", admin, id), func(ctx context.Context) (any, error) {
		p, err := store.GetProduct(ctx, s.db, tenantID, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !p.Active && !admin) {
			return nil, errNotFound("product")
		}
		if err != nil {
			return nil, err
		}
		return toProduct(p), nil
	})
}

func checkPrice(v *validator, raw json.RawMessage) decimal.Decimal {
	price, err := ParseMoney(raw)
	switch {
	case err != nil:
		v.add("unit_price", err.Error())
	case price.IsNegative():
		v.add("unit_price", "must not be negative")
	case price.GreaterThanOrEqual(maxUnitPrice):
		v.add("unit_price", "is too large")
	}
	return price
}

func (s *Server) createProduct(c *fiber.Ctx) error {
	var req productRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	req.SKU, req.Name = strings.TrimSpace(req.SKU), strings.TrimSpace(req.Name)
	v.check(req.SKU != "" && utf8.RuneCountInString(req.SKU) <= 64, "sku", "is required, at most 64 characters")
	v.check(req.Name != "" && utf8.RuneCountInString(req.Name) <= 200, "name", "is required, at most 200 characters")
	v.check(utf8.RuneCountInString(req.Description) <= 2000, "description", "must be at most 2000 characters")
	v.check(validCurrency(req.Currency), "currency", "is required: an ISO 4217 code such as EUR")
	price := checkPrice(&v, req.UnitPrice)
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		prod, err := store.CreateProductRecorded(ctx, tx, store.Product{TenantID: p.TenantID, SKU: req.SKU, Name: req.Name, Description: req.Description,
			UnitPrice: price, Currency: req.Currency}, p.UserID, requestID(c))
		if errors.Is(err, store.ErrConflict) {
			return result{}, errValidation([]FieldError{{Field: "sku", Message: "a product with this SKU already exists"}})
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusCreated, body: toProduct(prod), location: "/api/products/" + itoa(prod.ID)}, nil
	})
}

func (s *Server) updateProduct(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "product")
	if err != nil {
		return err
	}
	var req productPatchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	patch := store.ProductPatch{Name: req.Name, Description: req.Description, Currency: req.Currency, Active: req.Active}
	if req.Name != nil {
		*req.Name = strings.TrimSpace(*req.Name)
		v.check(*req.Name != "" && utf8.RuneCountInString(*req.Name) <= 200, "name", "must be 1 to 200 characters")
	}
	if req.Description != nil {
		v.check(utf8.RuneCountInString(*req.Description) <= 2000, "description", "must be at most 2000 characters")
	}
	if req.Currency != nil {
		v.check(validCurrency(*req.Currency), "currency", "must be an ISO 4217 code such as EUR")
	}
	if len(req.UnitPrice) > 0 {
		price := checkPrice(&v, req.UnitPrice)
		patch.UnitPrice = &price
	}
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		prod, err := store.UpdateProduct(ctx, tx, p.TenantID, id, patch, p.UserID, requestID(c))
		if errors.Is(err, store.ErrNotFound) {
			return result{}, errNotFound("product")
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusOK, body: toProduct(prod)}, nil
	})
}

// deleteProduct withdraws a product (orders may name it; it is not deleted).
func (s *Server) deleteProduct(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "product")
	if err != nil {
		return err
	}
	p := principal(c)
	inactive := false
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		_, err := store.UpdateProduct(ctx, tx, p.TenantID, id, store.ProductPatch{Active: &inactive}, p.UserID, requestID(c))
		if errors.Is(err, store.ErrNotFound) {
			return result{}, errNotFound("product")
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusNoContent}, nil
	})
}
