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
	// TokenGen is the generation of the user's access tokens: disabling
	// the user or changing its role, vendor or password bumps it, and
	// tokens of an older generation are refused.
	TokenGen int64
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
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, email))
	return u, mapErr(err, "get user by email")
}

const userCols = `id, tenant_id, email, password_hash, role, vendor_id, disabled_at, created_at, token_gen`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var vendor sql.NullInt64
	var disabled sql.NullTime
	if err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.PasswordHash, &u.Role, &vendor, &disabled, &u.CreatedAt, &u.TokenGen); err != nil {
		return User{}, err
	}
	u.VendorID = vendor.Int64
	u.Disabled = disabled.Valid
	return u, nil
}

// GetUser loads one user of a tenant.
func GetUser(ctx context.Context, q Querier, tenantID, id int64) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = ? AND id = ?`, tenantID, id))
	return u, mapErr(err, fmt.Sprintf("get user %d", id))
}

// UserFilter narrows ListUsers.
type UserFilter struct {
	Role string
	Page Page
}

// ListUsers returns one page of a tenant's users, newest first, and the total.
func ListUsers(ctx context.Context, q Querier, tenantID int64, f UserFilter) ([]User, int, error) {
	w := where{sql: "tenant_id = ?", args: []any{tenantID}}
	w.eq("role", f.Role)
	return listPage(ctx, q, "users", userCols, w, f.Page, scanUser)
}

// UserPatch holds the fields an update may change (nil: unchanged).
type UserPatch struct {
	Role         *string
	VendorID     *int64
	Disabled     *bool
	PasswordHash *string
}

type userJSON struct {
	ID       int64  `json:"id"`
	Email    string `json:"email"`
	Role     string `json:"role"`
	VendorID int64  `json:"vendor_id,omitempty"`
	Disabled bool   `json:"disabled"`
}

func userSummary(u User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Role: u.Role, VendorID: u.VendorID, Disabled: u.Disabled}
}

// CreateUserRecorded creates a user with its audit entry.
func CreateUserRecorded(ctx context.Context, q Querier, u User, actorID int64, requestID string) (User, error) {
	u, err := CreateUser(ctx, q, u)
	if err != nil {
		return User{}, err
	}
	_, err = RecordChange(ctx, q, Change{TenantID: u.TenantID, ActorID: actorID, RequestID: requestID, Action: "user.create",
		EntityType: "user", EntityID: u.ID, After: userSummary(u)})
	return u, err
}

// UpdateUser applies a patch and records it. Disabling a user or changing
// its password revokes its refresh tokens; disabling it or changing its
// role, vendor or password also revokes its access tokens (TokenGen).
func UpdateUser(ctx context.Context, q Querier, tenantID, id int64, p UserPatch, actorID int64, requestID string) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = ? AND id = ? FOR UPDATE`, tenantID, id))
	if err != nil {
		return User{}, mapErr(err, fmt.Sprintf("lock user %d", id))
	}
	before, was := userSummary(u), u
	if p.Role != nil {
		u.Role = *p.Role
	}
	if p.VendorID != nil {
		u.VendorID = *p.VendorID
	}
	if u.Role != RoleVendor {
		u.VendorID = 0
	}
	revoke := false
	var disabledAt any
	if p.Disabled != nil {
		revoke = revoke || (*p.Disabled && !u.Disabled)
		u.Disabled = *p.Disabled
	}
	if u.Disabled {
		disabledAt = now()
	}
	if p.PasswordHash != nil {
		u.PasswordHash = *p.PasswordHash
		revoke = true
	}
	var revokedAt any
	if revoke || u.Role != was.Role || u.VendorID != was.VendorID {
		u.TokenGen++
		revokedAt = now()
	}
	if _, err := q.ExecContext(ctx, `UPDATE users SET role = ?, vendor_id = ?, disabled_at = IF(? IS NULL, NULL, COALESCE(disabled_at, ?)), password_hash = ?,
		token_gen = ?, tokens_revoked_at = COALESCE(?, tokens_revoked_at), updated_at = ? WHERE id = ?`,
		u.Role, nullID(u.VendorID), disabledAt, disabledAt, u.PasswordHash, u.TokenGen, revokedAt, now(), u.ID); err != nil {
		return User{}, mapErr(err, fmt.Sprintf("update user %d", id))
	}
	if revoke {
		if err := RevokeUserSessions(ctx, q, u.ID); err != nil {
			return User{}, err
		}
	}
	_, err = RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "user.update",
		EntityType: "user", EntityID: u.ID, Before: before, After: userSummary(u)})
	return u, err
}

// TokenRevocation is a user whose access tokens older than generation Gen
// were revoked at At.
type TokenRevocation struct {
	UserID int64
	Gen    int64
	At     time.Time
}

// TokenRevocations lists the users whose tokens were revoked at or after
// since (the zero time, or any before 1970: all of them), oldest first.
func TokenRevocations(ctx context.Context, q Querier, since time.Time) ([]TokenRevocation, error) {
	out, err := queryAll(ctx, q, `SELECT id, token_gen, tokens_revoked_at FROM users WHERE tokens_revoked_at >= ? ORDER BY tokens_revoked_at`,
		[]any{sinceEpoch(since)}, func(row interface{ Scan(...any) error }) (TokenRevocation, error) {
			var r TokenRevocation
			return r, row.Scan(&r.UserID, &r.Gen, &r.At)
		})
	if err != nil {
		return nil, fmt.Errorf("list token revocations: %w", err)
	}
	return out, nil
}
