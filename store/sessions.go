package store

import (
	"context"
	"fmt"
	"time"
)

// RefreshToken is a stored refresh token (its SHA-256 only).
type RefreshToken struct {
	ID        int64
	FamilyID  string
	UserID    int64
	TenantID  int64
	TokenHash string
	CreatedAt time.Time
	ExpiresAt time.Time
	RotatedAt *time.Time
	RevokedAt *time.Time
}

// ErrTokenReused is returned when a rotated refresh token is presented
// again: the family has been revoked.
var ErrTokenReused = fmt.Errorf("refresh token reused; session revoked")

// InsertRefreshToken stores a new token of a family.
func InsertRefreshToken(ctx context.Context, q Querier, t RefreshToken) error {
	_, err := q.ExecContext(ctx, `INSERT INTO refresh_tokens (family_id, user_id, tenant_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.FamilyID, t.UserID, t.TenantID, t.TokenHash, now(), t.ExpiresAt.UTC())
	if err != nil {
		return mapErr(err, "insert refresh token")
	}
	return nil
}

// RotateRefreshToken consumes the token with hash h and returns it. An
// unknown, expired or revoked token is ErrNotFound; a token already rotated
// revokes its whole family and returns ErrTokenReused with the token (the
// caller must commit the transaction for the revocation to hold).
func RotateRefreshToken(ctx context.Context, q Querier, h string) (RefreshToken, error) {
	var t RefreshToken
	err := q.QueryRowContext(ctx, `SELECT id, family_id, user_id, tenant_id, token_hash, created_at, expires_at, rotated_at, revoked_at
		FROM refresh_tokens WHERE token_hash = ? FOR UPDATE`, h).
		Scan(&t.ID, &t.FamilyID, &t.UserID, &t.TenantID, &t.TokenHash, &t.CreatedAt, &t.ExpiresAt, &t.RotatedAt, &t.RevokedAt)
	if err != nil {
		return RefreshToken{}, mapErr(err, "find refresh token")
	}
	switch {
	case t.RotatedAt != nil:
		// Reuse of a rotated token, even an expired one: somebody holds a
		// copy. Revoke the family (idempotent if it already is).
		if err := RevokeFamily(ctx, q, t.FamilyID); err != nil {
			return RefreshToken{}, err
		}
		return t, ErrTokenReused
	case t.RevokedAt != nil || !t.ExpiresAt.After(time.Now()):
		return RefreshToken{}, fmt.Errorf("refresh token revoked or expired: %w", ErrNotFound)
	}
	if _, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET rotated_at = ? WHERE id = ?`, now(), t.ID); err != nil {
		return RefreshToken{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	return t, nil
}

// FindRefreshToken returns the live token with hash h (for logout).
func FindRefreshToken(ctx context.Context, q Querier, h string) (RefreshToken, error) {
	var t RefreshToken
	err := q.QueryRowContext(ctx, `SELECT id, family_id, user_id, tenant_id FROM refresh_tokens WHERE token_hash = ?`, h).
		Scan(&t.ID, &t.FamilyID, &t.UserID, &t.TenantID)
	return t, mapErr(err, "find refresh token")
}

// RevokeFamily revokes every token of a login session.
func RevokeFamily(ctx context.Context, q Querier, familyID string) error {
	if _, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`, now(), familyID); err != nil {
		return fmt.Errorf("revoke session family: %w", err)
	}
	return nil
}

// RevokeUserSessions revokes every refresh token of a user.
func RevokeUserSessions(ctx context.Context, q Querier, userID int64) error {
	if _, err := q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, now(), userID); err != nil {
		return fmt.Errorf("revoke sessions of user %d: %w", userID, err)
	}
	return nil
}

// SessionRevocation is a session (refresh-token family) revoked at At.
type SessionRevocation struct {
	FamilyID string
	At       time.Time
}

// SessionRevocations lists the sessions revoked at or after since, oldest
// first.
func SessionRevocations(ctx context.Context, q Querier, since time.Time) ([]SessionRevocation, error) {
	out, err := queryAll(ctx, q, `SELECT family_id, MAX(revoked_at) AS at FROM refresh_tokens WHERE revoked_at >= ?
		GROUP BY family_id ORDER BY at`, []any{sinceEpoch(since)}, func(row interface{ Scan(...any) error }) (SessionRevocation, error) {
		var r SessionRevocation
		return r, row.Scan(&r.FamilyID, &r.At)
	})
	if err != nil {
		return nil, fmt.Errorf("list session revocations: %w", err)
	}
	return out, nil
}
