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
