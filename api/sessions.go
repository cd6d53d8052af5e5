package api

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/iacc/iacc/store"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
}

// login checks email and password (unknown user and wrong password look
// alike, in body and in time), applies the brute-force guards, and starts a
// session: an access token and a refresh token of a new family.
func (s *Server) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	req.Email = strings.ToLower(strings.TrimSpace(req.Email))
	v.check(req.Email != "" && utf8.RuneCountInString(req.Email) <= 254, "email", "is required")
	v.check(req.Password != "", "password", "is required")
	v.check(len(req.Password) <= 72, "password", "must be at most 72 bytes")
	if err := v.err(); err != nil {
		return err
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	guard := loginGuard{s}
	ip := c.IP()
	if blocked, retry := guard.reserve(ctx, req.Email, ip); blocked {
		return rateLimited(retry, "too many failed logins; try again later")
	}
	u, err := store.GetUserByEmail(ctx, s.db, req.Email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	hash := dummyHash
	if err == nil {
		hash = []byte(u.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) != nil || err != nil || u.Disabled {
		return errUnauthorized("invalid email or password")
	}
	guard.succeeded(ctx, req.Email, ip)
	resp, err := s.startSession(c, u, newFamilyID())
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

func newFamilyID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func hashRefresh(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// startSession issues an access token and stores a new refresh token of family.
func (s *Server) startSession(c *fiber.Ctx, u store.User, family string) (tokenResponse, error) {
	return s.issuePair(c, s.db, u, family)
}

func (s *Server) issuePair(c *fiber.Ctx, q store.Querier, u store.User, family string) (tokenResponse, error) {
	access, err := s.IssueToken(Principal{UserID: u.ID, TenantID: u.TenantID, Role: u.Role, VendorID: u.VendorID, TokenGen: u.TokenGen, Session: family})
	if err != nil {
		return tokenResponse{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return tokenResponse{}, err
	}
	refresh := "rt_" + base64.RawURLEncoding.EncodeToString(raw)
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	if err := store.InsertRefreshToken(ctx, q, store.RefreshToken{FamilyID: family, UserID: u.ID, TenantID: u.TenantID,
		TokenHash: hashRefresh(refresh), ExpiresAt: time.Now().Add(s.cfg.RefreshTTL)}); err != nil {
		return tokenResponse{}, err
	}
	return tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.cfg.TokenTTL / time.Second),
		RefreshToken: refresh, RefreshExpiresIn: int(s.cfg.RefreshTTL / time.Second)}, nil
}

// refresh rotates a refresh token: the presented one is consumed and a new
// pair of the same family is returned. Presenting an already-rotated token
// (a stolen copy, or a replay) revokes the whole family.
func (s *Server) refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" || len(req.RefreshToken) > 200 {
		return errValidation([]FieldError{{Field: "refresh_token", Message: "is required"}})
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	var resp tokenResponse
	reused, family := false, ""
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		reused = false
		old, err := store.RotateRefreshToken(ctx, tx, hashRefresh(req.RefreshToken))
		if errors.Is(err, store.ErrTokenReused) {
			reused, family = true, old.FamilyID
			return nil // commit the revocation
		}
		if err != nil {
			return err
		}
		u, err := store.GetUser(ctx, tx, old.TenantID, old.UserID)
		if err != nil {
			return err
		}
		if u.Disabled {
			return store.ErrNotFound
		}
		resp, err = s.issuePair(c, tx, u, old.FamilyID)
		return err
	})
	if reused && err == nil {
		s.revoked.noteSession(family, time.Now()) // its access tokens too
	}
	if reused {
		s.log.Warn("refresh token reuse detected; session revoked", "request_id", requestID(c))
		return errUnauthorized("the refresh token was already used; the session has been revoked")
	}
	if errors.Is(err, store.ErrNotFound) {
		return errUnauthorized("the refresh token is invalid, expired or revoked")
	}
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

// logout revokes the session (token family) of a refresh token. It answers
// 204 whether or not the token was known.
func (s *Server) logout(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" || len(req.RefreshToken) > 200 {
		return errValidation([]FieldError{{Field: "refresh_token", Message: "is required"}})
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	t, err := store.FindRefreshToken(ctx, s.db, hashRefresh(req.RefreshToken))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		if err := store.RevokeFamily(ctx, s.db, t.FamilyID); err != nil {
			return err
		}
		s.revoked.noteSession(t.FamilyID, time.Now()) // its access tokens too
	}
	return c.SendStatus(fiber.StatusNoContent)
}
