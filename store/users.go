package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Roles a user can hold.
const (
	RoleAdmin      = "admin"
	RoleAccounting = "accounting"
	RoleVendor     = "vendor"
	RoleViewer     = "viewer"
)

// ValidRole reports whether r is one of the known roles.
func ValidRole(r string) bool {
	switch r {
	case RoleAdmin, RoleAccounting, RoleVendor, RoleViewer:
		return true
	}
	return false
}

// User is a login of one tenant. VendorID is set for vendor users only.
type User struct {
	ID           int64
	TenantID     int64
	Email        string
	PasswordHash string
	Role         string
	VendorID     int64
	Disabled     bool
	CreatedAt    time.Time
}

// CreateUser inserts a user; a taken email is ErrConflict.
func CreateUser(ctx context.Context, q Querier, u User) (User, error) {
	u.CreatedAt = now()
	var vendor sql.NullInt64
	if u.VendorID != 0 {
		vendor = sql.NullInt64{Int64: u.VendorID, Valid: true}
	}
	res, err := q.ExecContext(ctx, `INSERT INTO users (tenant_id, email, password_hash, role, vendor_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, u.TenantID, u.Email, u.PasswordHash, u.Role, vendor, u.CreatedAt, u.CreatedAt)
	if err != nil {
		return User{}, mapErr(err, "insert user")
	}
	if u.ID, err = res.LastInsertId(); err != nil {
		return User{}, fmt.Errorf("insert user: %w", err)
	}
	return u, nil
}

// GetUserByEmail loads a user for login.
func GetUserByEmail(ctx context.Context, q Querier, email string) (User, error) {
	var u User
	var vendor sql.NullInt64
	var disabled sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT id, tenant_id, email, password_hash, role, vendor_id, disabled_at, created_at
		FROM users WHERE email = ?`, email).
		Scan(&u.ID, &u.TenantID, &u.Email, &u.PasswordHash, &u.Role, &vendor, &disabled, &u.CreatedAt)
	if err != nil {
		return User{}, mapErr(err, "get user by email")
	}
	u.VendorID = vendor.Int64
	u.Disabled = disabled.Valid
	return u, nil
}
