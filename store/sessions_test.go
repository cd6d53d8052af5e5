package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

type sessionBundle struct {
	db   *store.DB
	ten  store.Tenant
	user store.User
}

func setupSessions(t *testing.T) sessionBundle {
	t.Helper()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "acme")
	return sessionBundle{db: db, ten: ten, user: newUser(t, db, ten.ID, "alice")}
}

func newUser(t *testing.T, db *store.DB, tenantID int64, name string) store.User {
	t.Helper()
	u, err := store.CreateUser(context.Background(), db, store.User{TenantID: tenantID, Email: name + "-" + randomHex(4) + "@acme.test", PasswordHash: "hash", Role: store.RoleAccounting})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newToken stores a live token of the family and returns its hash.
func newToken(t *testing.T, db *store.DB, u store.User, family string, expires time.Time) string {
	t.Helper()
	sum := sha256.Sum256([]byte(randomHex(32)))
	h := hex.EncodeToString(sum[:])
	if err := store.InsertRefreshToken(context.Background(), db, store.RefreshToken{FamilyID: family, UserID: u.ID, TenantID: u.TenantID, TokenHash: h, ExpiresAt: expires}); err != nil {
		t.Fatal(err)
	}
	return h
}

// rotate rotates in a transaction that commits even when rotation fails, as
// the caller must for a reuse to revoke the family.
func rotate(db *store.DB, h string) (store.RefreshToken, error) {
	var rotErr error
	tok, err := inTx(db, func(tx *sql.Tx) (store.RefreshToken, error) {
		tok, err := store.RotateRefreshToken(context.Background(), tx, h)
		rotErr = err
		return tok, nil
	})
	if err != nil {
		return tok, err
	}
	return tok, rotErr
}

type tokenRow struct {
	rotated, revoked bool
}

func tokenState(t *testing.T, db *store.DB, h string) tokenRow {
	t.Helper()
	var rotated, revoked sql.NullTime
	if err := db.QueryRow(`SELECT rotated_at, revoked_at FROM refresh_tokens WHERE token_hash = ?`, h).Scan(&rotated, &revoked); err != nil {
		t.Fatal(err)
	}
	return tokenRow{rotated: rotated.Valid, revoked: revoked.Valid}
}

func TestRotateRefreshToken(t *testing.T) {
	t.Parallel()
	s := setupSessions(t)
	family := randomHex(16)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	h := newToken(t, s.db, s.user, family, exp)
	if got := tokenState(t, s.db, h); got != (tokenRow{}) {
		t.Fatalf("new token state = %+v", got)
	}
	tok, err := rotate(s.db, h)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenHash != h || tok.FamilyID != family || tok.UserID != s.user.ID || tok.TenantID != s.ten.ID || !tok.ExpiresAt.Equal(exp) || tok.ID == 0 {
		t.Errorf("rotated token = %+v", tok)
	}
	if got := tokenState(t, s.db, h); got != (tokenRow{rotated: true}) {
		t.Errorf("token after rotation = %+v, want rotated and not revoked", got)
	}
	found, err := store.FindRefreshToken(context.Background(), s.db, h)
	if err != nil || found.FamilyID != family || found.UserID != s.user.ID {
		t.Errorf("FindRefreshToken = %+v, %v", found, err)
	}
	if _, err := rotate(s.db, hex.EncodeToString(make([]byte, 32))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown token: err = %v, want ErrNotFound", err)
	}
}

// Presenting a rotated token again is theft: the whole family is revoked.
func TestRotateRefreshTokenReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	s := setupSessions(t)
	family := randomHex(16)
	exp := time.Now().Add(time.Hour)
	first := newToken(t, s.db, s.user, family, exp)
	if _, err := rotate(s.db, first); err != nil {
		t.Fatal(err)
	}
	second := newToken(t, s.db, s.user, family, exp) // the token issued by the rotation
	sibling := newToken(t, s.db, s.user, family, exp)
	otherFamily := newToken(t, s.db, s.user, randomHex(16), exp)

	if _, err := rotate(s.db, first); !errors.Is(err, store.ErrTokenReused) {
		t.Fatalf("reuse: err = %v, want ErrTokenReused", err)
	}
	for name, h := range map[string]string{"first": first, "second": second, "sibling": sibling} {
		if !tokenState(t, s.db, h).revoked {
			t.Errorf("%s token of the family is not revoked", name)
		}
	}
	for name, h := range map[string]string{"second": second, "sibling": sibling} {
		if _, err := rotate(s.db, h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotate the %s token after reuse: err = %v, want ErrNotFound", name, err)
		}
	}
	// A rotated token is always a reuse, however often it comes back.
	if _, err := rotate(s.db, first); !errors.Is(err, store.ErrTokenReused) {
		t.Errorf("the reused token presented a third time: err = %v, want ErrTokenReused", err)
	}
	if got := tokenState(t, s.db, otherFamily); got.revoked {
		t.Error("a token of another family was revoked")
	}
	if _, err := rotate(s.db, otherFamily); err != nil {
		t.Errorf("other family: %v", err)
	}
}

func TestRotateRefreshTokenExpired(t *testing.T) {
	t.Parallel()
	s := setupSessions(t)
	h := newToken(t, s.db, s.user, randomHex(16), time.Now().Add(-time.Second))
	if _, err := rotate(s.db, h); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: err = %v, want ErrNotFound", err)
	}
	if got := tokenState(t, s.db, h); got != (tokenRow{}) {
		t.Errorf("expired token state after refusal = %+v, want untouched", got)
	}
}

func TestRevokeUserSessions(t *testing.T) {
	t.Parallel()
	s := setupSessions(t)
	bob := newUser(t, s.db, s.ten.ID, "bob")
	exp := time.Now().Add(time.Hour)
	a1 := newToken(t, s.db, s.user, randomHex(16), exp)
	a2 := newToken(t, s.db, s.user, randomHex(16), exp)
	b1 := newToken(t, s.db, bob, randomHex(16), exp)
	if err := store.RevokeUserSessions(context.Background(), s.db, s.user.ID); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{a1, a2} {
		if !tokenState(t, s.db, h).revoked {
			t.Error("a token of the user is not revoked")
		}
		if _, err := rotate(s.db, h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotate a revoked token: err = %v, want ErrNotFound", err)
		}
	}
	if _, err := rotate(s.db, b1); err != nil {
		t.Errorf("another user's token: %v", err)
	}
}

func TestUpdateUserRevokesSessions(t *testing.T) {
	t.Parallel()
	s := setupSessions(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	update := func(u store.User, p store.UserPatch) store.User {
		t.Helper()
		got, err := inTx(s.db, func(tx *sql.Tx) (store.User, error) {
			return store.UpdateUser(ctx, tx, s.ten.ID, u.ID, p, 1, "req-user")
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// A role change keeps the sessions.
	kept := newToken(t, s.db, s.user, randomHex(16), exp)
	viewer := store.RoleViewer
	update(s.user, store.UserPatch{Role: &viewer})
	if tokenState(t, s.db, kept).revoked {
		t.Error("a role change revoked the user's sessions")
	}

	// Disabling revokes every token of the user.
	other := newToken(t, s.db, s.user, randomHex(16), exp)
	yes := true
	got := update(s.user, store.UserPatch{Disabled: &yes})
	if !got.Disabled {
		t.Error("UpdateUser returned an enabled user")
	}
	stored, err := store.GetUser(ctx, s.db, s.ten.ID, s.user.ID)
	if err != nil || !stored.Disabled || stored.Role != store.RoleViewer {
		t.Errorf("stored user = %+v, %v", stored, err)
	}
	for _, h := range []string{kept, other} {
		if !tokenState(t, s.db, h).revoked {
			t.Error("disabling the user left a token live")
		}
		if _, err := rotate(s.db, h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotate a token of a disabled user: err = %v, want ErrNotFound", err)
		}
	}
	audit := auditOf(t, s.db, s.ten.ID, "user", s.user.ID)
	if len(audit) != 2 || audit[0].Action != "user.update" || audit[0].RequestID != "req-user" {
		t.Fatalf("audit of user = %+v", audit)
	}
	type userJSON struct {
		Disabled bool   `json:"disabled"`
		Role     string `json:"role"`
	}
	if b, a := decodeJSON[userJSON](t, audit[0].Before), decodeJSON[userJSON](t, audit[0].After); b.Disabled || !a.Disabled {
		t.Errorf("disable audit: before %s after %s", audit[0].Before, audit[0].After)
	}

	// A password change revokes too.
	bob := newUser(t, s.db, s.ten.ID, "bob")
	bt := newToken(t, s.db, bob, randomHex(16), exp)
	pw := "new-hash"
	update(bob, store.UserPatch{PasswordHash: &pw})
	if !tokenState(t, s.db, bt).revoked {
		t.Error("a password change left a token live")
	}
}
