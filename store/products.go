package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Product is an item of a tenant's catalog.
type Product struct {
	ID          int64
	TenantID    int64
	SKU         string
	Name        string
	Description string
	UnitPrice   decimal.Decimal
	Currency    string
	Active      bool
	CreatedAt   time.Time
}

// CreateProduct inserts a product; a SKU taken within the tenant is ErrConflict.
func CreateProduct(ctx context.Context, q Querier, p Product) (Product, error) {
	p.CreatedAt = now()
	p.Active = true
	res, err := q.ExecContext(ctx, `INSERT INTO products (tenant_id, sku, name, description, unit_price, currency, active, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, TRUE, ?, ?)`, p.TenantID, p.SKU, p.Name, p.Description, p.UnitPrice.StringFixed(2), p.Currency, p.CreatedAt, p.CreatedAt)
	if err != nil {
		return Product{}, mapErr(err, "insert product")
	}
	if p.ID, err = res.LastInsertId(); err != nil {
		return Product{}, fmt.Errorf("insert product: %w", err)
	}
	return p, nil
}

const productCols = `id, tenant_id, sku, name, description, unit_price, currency, active, created_at`

func scanProduct(row interface{ Scan(...any) error }) (Product, error) {
	var p Product
	err := row.Scan(&p.ID, &p.TenantID, &p.SKU, &p.Name, &p.Description, &p.UnitPrice, &p.Currency, &p.Active, &p.CreatedAt)
	return p, err
}

// GetProduct loads one product of a tenant.
func GetProduct(ctx context.Context, q Querier, tenantID, id int64) (Product, error) {
	p, err := scanProduct(q.QueryRowContext(ctx, `SELECT `+productCols+` FROM products WHERE tenant_id = ? AND id = ?`, tenantID, id))
	return p, mapErr(err, fmt.Sprintf("get product %d", id))
}

// ProductFilter narrows ListProducts.
type ProductFilter struct {
	ActiveOnly bool
	Page       Page
}

// ListProducts returns one page of a tenant's catalog, newest first, and the total.
func ListProducts(ctx context.Context, q Querier, tenantID int64, f ProductFilter) ([]Product, int, error) {
	w := where{sql: "tenant_id = ?", args: []any{tenantID}}
	if f.ActiveOnly {
		w.sql += " AND active = TRUE"
	}
	return listPage(ctx, q, "products", productCols, w, f.Page, scanProduct)
}

// ProductPatch holds the fields an update may change (nil: unchanged).
type ProductPatch struct {
	Name        *string
	Description *string
	UnitPrice   *decimal.Decimal
	Currency    *string
	Active      *bool
}

type productJSON struct {
	ID        int64  `json:"id"`
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	UnitPrice string `json:"unit_price"`
	Currency  string `json:"currency"`
	Active    bool   `json:"active"`
}

func productSummary(p Product) productJSON {
	return productJSON{ID: p.ID, SKU: p.SKU, Name: p.Name, UnitPrice: p.UnitPrice.StringFixed(2), Currency: p.Currency, Active: p.Active}
}

// CreateProductRecorded creates a product with its audit entry.
func CreateProductRecorded(ctx context.Context, q Querier, p Product, actorID int64, requestID string) (Product, error) {
	p, err := CreateProduct(ctx, q, p)
	if err != nil {
		return Product{}, err
	}
	_, err = RecordChange(ctx, q, Change{TenantID: p.TenantID, ActorID: actorID, RequestID: requestID, Action: "product.create",
		EntityType: "product", EntityID: p.ID, After: productSummary(p)})
	return p, err
}

// UpdateProduct applies a patch and records it.
func UpdateProduct(ctx context.Context, q Querier, tenantID, id int64, patch ProductPatch, actorID int64, requestID string) (Product, error) {
	p, err := scanProduct(q.QueryRowContext(ctx, `SELECT `+productCols+` FROM products WHERE tenant_id = ? AND id = ? FOR UPDATE`, tenantID, id))
	if err != nil {
		return Product{}, mapErr(err, fmt.Sprintf("lock product %d", id))
	}
	before := productSummary(p)
	if patch.Name != nil {
		p.Name = *patch.Name
	}
	if patch.Description != nil {
		p.Description = *patch.Description
	}
	if patch.UnitPrice != nil {
		p.UnitPrice = *patch.UnitPrice
	}
	if patch.Currency != nil {
		p.Currency = *patch.Currency
	}
	if patch.Active != nil {
		p.Active = *patch.Active
	}
	if _, err := q.ExecContext(ctx, `UPDATE products SET name = ?, description = ?, unit_price = ?, currency = ?, active = ?, updated_at = ? WHERE id = ?`,
		p.Name, p.Description, p.UnitPrice.StringFixed(2), p.Currency, p.Active, now(), p.ID); err != nil {
		return Product{}, mapErr(err, fmt.Sprintf("update product %d", id))
	}
	_, err = RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "product.update",
		EntityType: "product", EntityID: p.ID, Before: before, After: productSummary(p)})
	return p, err
}
