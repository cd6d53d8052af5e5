package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Vendor statuses.
const (
	VendorActive   = "active"
	VendorArchived = "archived"
)

// Vendor is a supplier of one tenant. Balance is the open amount owed to it.
type Vendor struct {
	ID        int64
	TenantID  int64
	Name      string
	Email     string
	Phone     string
	Address   string
	Balance   decimal.Decimal
	Status    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateVendor inserts a vendor; a name taken within the tenant is ErrConflict.
func CreateVendor(ctx context.Context, q Querier, v Vendor) (Vendor, error) {
	v.CreatedAt = now()
	v.UpdatedAt = v.CreatedAt
	v.Status = VendorActive
	v.Balance = decimal.Zero
	res, err := q.ExecContext(ctx, `INSERT INTO vendors (tenant_id, name, email, phone, address, balance, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)`, v.TenantID, v.Name, v.Email, v.Phone, v.Address, v.Status, v.CreatedAt, v.UpdatedAt)
	if err != nil {
		return Vendor{}, mapErr(err, "insert vendor")
	}
	if v.ID, err = res.LastInsertId(); err != nil {
		return Vendor{}, fmt.Errorf("insert vendor: %w", err)
	}
	return v, nil
}

const vendorCols = `id, tenant_id, name, email, phone, address, balance, status, created_at, updated_at`

func scanVendor(row interface{ Scan(...any) error }) (Vendor, error) {
	var v Vendor
	err := row.Scan(&v.ID, &v.TenantID, &v.Name, &v.Email, &v.Phone, &v.Address, &v.Balance, &v.Status, &v.CreatedAt, &v.UpdatedAt)
	return v, err
}

// GetVendor loads one vendor of a tenant.
func GetVendor(ctx context.Context, q Querier, tenantID, id int64) (Vendor, error) {
	v, err := scanVendor(q.QueryRowContext(ctx, `SELECT `+vendorCols+` FROM vendors WHERE tenant_id = ? AND id = ?`, tenantID, id))
	return v, mapErr(err, fmt.Sprintf("get vendor %d", id))
}

// VendorFilter narrows ListVendors.
type VendorFilter struct {
	Status string
	Page   Page
}

// ListVendors returns one page of a tenant's vendors, newest first, and the total count.
func ListVendors(ctx context.Context, q Querier, tenantID int64, f VendorFilter) ([]Vendor, int, error) {
	where := `tenant_id = ?`
	args := []any{tenantID}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, f.Status)
	}
	var total int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM vendors WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count vendors: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+vendorCols+` FROM vendors WHERE `+where+` ORDER BY id DESC LIMIT ? OFFSET ?`,
		append(args, f.Page.Limit(), f.Page.Offset())...)
	if err != nil {
		return nil, 0, fmt.Errorf("list vendors: %w", err)
	}
	defer rows.Close()
	var out []Vendor
	for rows.Next() {
		v, err := scanVendor(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("scan vendor: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list vendors: %w", err)
	}
	return out, total, nil
}

// AddVendorBalance adds delta to a vendor's balance. Callers make it the last
// statement of their transaction: the row lock it takes is then held for the
// shortest time (FINDINGS.md: a hot vendor row defeats group commit).
func AddVendorBalance(ctx context.Context, q Querier, tenantID, vendorID int64, delta decimal.Decimal) error {
	res, err := q.ExecContext(ctx, `UPDATE vendors SET balance = balance + ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		delta.StringFixed(2), now(), tenantID, vendorID)
	if err != nil {
		return fmt.Errorf("update vendor %d balance: %w", vendorID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update vendor %d balance: %w", vendorID, err)
	}
	if n != 1 {
		return fmt.Errorf("update vendor %d balance: %w", vendorID, ErrNotFound)
	}
	return nil
}
