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
	w := where{sql: "tenant_id = ?", args: []any{tenantID}}
	w.eq("status", f.Status)
	return listPage(ctx, q, "vendors", vendorCols, w, f.Page, scanVendor)
}

// AddVendorBalance adds delta to a vendor's balance. Callers make it the last
// statement of their transaction: the row lock it takes is then held for the
// shortest time (FINDINGS.md: a hot vendor row defeats group commit).
func AddVendorBalance(ctx context.Context, q Querier, tenantID, vendorID int64, delta decimal.Decimal) error {
	res, err := q.ExecContext(ctx, `UPDATE vendors SET balance = balance + ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		delta.StringFixed(2), now(), tenantID, vendorID)
	if err != nil {
		return mapErr(err, fmt.Sprintf("update vendor %d balance", vendorID))
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

// VendorPatch holds the fields an update may change (nil: unchanged).
type VendorPatch struct {
	Name    *string
	Email   *string
	Phone   *string
	Address *string
}

type vendorJSON struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
	Status  string `json:"status"`
	Balance string `json:"balance"`
}

// VendorSummary is the vendor as audit entries and events carry it.
func VendorSummary(v Vendor) any {
	return vendorJSON{ID: v.ID, Name: v.Name, Email: v.Email, Phone: v.Phone, Address: v.Address, Status: v.Status, Balance: v.Balance.StringFixed(2)}
}

func lockVendor(ctx context.Context, q Querier, tenantID, id int64) (Vendor, error) {
	v, err := scanVendor(q.QueryRowContext(ctx, `SELECT `+vendorCols+` FROM vendors WHERE tenant_id = ? AND id = ? FOR UPDATE`, tenantID, id))
	return v, mapErr(err, fmt.Sprintf("lock vendor %d", id))
}

// CreateVendorRecorded creates a vendor with its audit entry and vendor.created event.
func CreateVendorRecorded(ctx context.Context, q Querier, v Vendor, actorID int64, requestID string) (Vendor, Event, error) {
	v, err := CreateVendor(ctx, q, v)
	if err != nil {
		return Vendor{}, Event{}, err
	}
	ev, err := RecordChange(ctx, q, Change{TenantID: v.TenantID, ActorID: actorID, RequestID: requestID, Action: "vendor.create",
		EntityType: "vendor", EntityID: v.ID, After: VendorSummary(v), EventType: EventVendorCreated})
	return v, ev, err
}

// UpdateVendor applies a patch under a row lock and records it with a
// vendor.updated event. Archived vendors cannot be changed.
func UpdateVendor(ctx context.Context, q Querier, tenantID, id int64, p VendorPatch, actorID int64, requestID string) (Vendor, Event, error) {
	v, err := lockVendor(ctx, q, tenantID, id)
	if err != nil {
		return Vendor{}, Event{}, err
	}
	if v.Status == VendorArchived {
		return Vendor{}, Event{}, fmt.Errorf("vendor %d is archived: %w", id, ErrConflict)
	}
	before := VendorSummary(v)
	for dst, src := range map[*string]*string{&v.Name: p.Name, &v.Email: p.Email, &v.Phone: p.Phone, &v.Address: p.Address} {
		if src != nil {
			*dst = *src
		}
	}
	v.UpdatedAt = now()
	if _, err := q.ExecContext(ctx, `UPDATE vendors SET name = ?, email = ?, phone = ?, address = ?, updated_at = ? WHERE id = ?`,
		v.Name, v.Email, v.Phone, v.Address, v.UpdatedAt, v.ID); err != nil {
		return Vendor{}, Event{}, mapErr(err, fmt.Sprintf("update vendor %d", id))
	}
	ev, err := RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "vendor.update",
		EntityType: "vendor", EntityID: v.ID, Before: before, After: VendorSummary(v), EventType: EventVendorUpdated})
	return v, ev, err
}

// RemoveVendor deletes a vendor that has never been used, or archives one
// that has orders (its history must stay). It reports whether it archived.
func RemoveVendor(ctx context.Context, q Querier, tenantID, id int64, actorID int64, requestID string) (archived bool, ev Event, err error) {
	v, err := lockVendor(ctx, q, tenantID, id)
	if err != nil {
		return false, Event{}, err
	}
	var used int
	if err := q.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM purchase_orders WHERE tenant_id = ? AND vendor_id = ?)
		+ (SELECT COUNT(*) FROM users WHERE tenant_id = ? AND vendor_id = ?)`, tenantID, id, tenantID, id).Scan(&used); err != nil {
		return false, Event{}, fmt.Errorf("check use of vendor %d: %w", id, err)
	}
	before := VendorSummary(v)
	if used == 0 {
		if _, err := q.ExecContext(ctx, `DELETE FROM vendors WHERE id = ?`, id); err != nil {
			return false, Event{}, fmt.Errorf("delete vendor %d: %w", id, err)
		}
		_, err := RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "vendor.delete",
			EntityType: "vendor", EntityID: id, Before: before})
		return false, Event{}, err
	}
	if v.Status == VendorArchived {
		return true, Event{}, nil
	}
	v.Status, v.UpdatedAt = VendorArchived, now()
	if _, err := q.ExecContext(ctx, `UPDATE vendors SET status = ?, archived_at = ?, updated_at = ? WHERE id = ?`, v.Status, v.UpdatedAt, v.UpdatedAt, id); err != nil {
		return false, Event{}, fmt.Errorf("archive vendor %d: %w", id, err)
	}
	ev, err = RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "vendor.archive",
		EntityType: "vendor", EntityID: id, Before: before, After: VendorSummary(v), EventType: EventVendorUpdated})
	return true, ev, err
}
