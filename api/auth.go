package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/iacc/iacc/store"
)

// Principal is the authenticated caller.
type Principal struct {
	UserID   int64
	TenantID int64
	Role     string
	VendorID int64  // vendor users only
	TokenGen int64  // the user's token generation when the token was issued
	Session  string // the refresh-token family the token was issued with ("" for none)
}

// claims are the access token's JWT claims.
type claims struct {
	jwt.RegisteredClaims
	Tenant int64  `json:"tid"`
	Role   string `json:"role"`
	Vendor int64  `json:"vid,omitempty"`
	Gen    int64  `json:"gen,omitempty"` // store.User.TokenGen
	Sid    string `json:"sid,omitempty"` // the session: refresh-token family
}

const maxTokenBytes = 4096

// dummyHash is compared against when the user does not exist, so that an
// unknown email costs the same time as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("iacc-timing-equaliser"), bcrypt.DefaultCost)

// IssueToken signs an access token for p.
func (s *Server) IssueToken(p Principal) (string, error) {
	now := s.now()
	cl := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   strconv.FormatInt(p.UserID, 10),
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.TokenTTL)),
		},
		Tenant: p.TenantID, Role: p.Role, Vendor: p.VendorID, Gen: p.TokenGen, Sid: p.Session,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(s.cfg.JWTSecret)
	if err != nil {
		return "", errors.New("sign access token: " + err.Error())
	}
	return tok, nil
}

// tokenLeeway is the clock skew allowed on exp and nbf.
const tokenLeeway = 30 * time.Second

// parseToken verifies an access token: HS256 only (alg "none" and every
// other algorithm are refused), signature, exp required, iss and aud checked.
// A verified token is remembered, by its SHA-256, until it expires: decoding
// its JSON again on every request was a fifth of a cached read's cost.
func (s *Server) parseToken(raw string) (Principal, error) {
	return s.parseTokenSum(raw, sha256.Sum256([]byte(raw)))
}

// parseTokenSum is parseToken with the token's SHA-256 already computed.
func (s *Server) parseTokenSum(raw string, key [32]byte) (Principal, error) {
	if len(raw) > maxTokenBytes {
		return Principal{}, errors.New("token too long")
	}
	if p, ok := s.tokenCache.get(key, s.now()); ok {
		return p, nil
	}
	p, exp, err := s.verifyToken(raw)
	if err != nil {
		return Principal{}, err
	}
	s.tokenCache.put(key, p, exp.Add(tokenLeeway))
	return p, nil
}

// now is the clock of token checks (tests move it).
func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// verifyToken is parseToken without the cache; it also returns the expiry.
func (s *Server) verifyToken(raw string) (Principal, time.Time, error) {
	var cl claims
	_, err := jwt.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return s.cfg.JWTSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithAudience(s.cfg.Audience),
		jwt.WithLeeway(tokenLeeway),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	uid, err := strconv.ParseInt(cl.Subject, 10, 64)
	if err != nil || uid <= 0 || cl.Tenant <= 0 || !store.ValidRole(cl.Role) {
		return Principal{}, time.Time{}, errors.New("token claims incomplete")
	}
	if cl.Role == store.RoleVendor && cl.Vendor <= 0 {
		return Principal{}, time.Time{}, errors.New("vendor token without vendor")
	}
	return Principal{UserID: uid, TenantID: cl.Tenant, Role: cl.Role, VendorID: cl.Vendor, TokenGen: cl.Gen, Session: cl.Sid}, cl.ExpiresAt.Time, nil
}

type principalKey struct{}

// tokenSumKey holds the verified token's SHA-256 (the per-token rate
// limit's key).
type tokenSumKey struct{}

// authenticate requires a valid bearer token and stores the principal.
func (s *Server) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="iacc"`)
		return errUnauthorized("a bearer token is required")
	}
	raw = strings.TrimSpace(raw)
	sum := sha256.Sum256([]byte(raw))
	p, err := s.parseTokenSum(raw, sum)
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="iacc", error="invalid_token"`)
		return errUnauthorized("the bearer token is invalid or expired")
	}
	if s.revoked.revoked(p.UserID, p.TokenGen) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="iacc", error="invalid_token"`)
		return errUnauthorized("the bearer token was revoked: the user was disabled or its role, vendor or password changed; log in again")
	}
	if p.Session != "" && s.revoked.sessionRevoked(p.Session) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="iacc", error="invalid_token"`)
		return errUnauthorized("the bearer token was revoked: its session ended (logout, or a refresh token used twice); log in again")
	}
	pv := any(p) // boxed once for both
	c.Locals(principalKey{}, pv)
	c.Locals(tokenSumKey{}, sum)
	c.SetUserContext(context.WithValue(c.UserContext(), principalKey{}, pv))
	return c.Next()
}

func principal(c *fiber.Ctx) Principal {
	p, _ := c.Locals(principalKey{}).(Principal)
	return p
}

// HashPassword hashes a password with bcrypt (passwords over 72 bytes are
// refused, as bcrypt would silently ignore the rest).
func HashPassword(pw string) (string, error) {
	if len(pw) > 72 {
		return "", errors.New("password longer than 72 bytes")
	}
	if len(pw) < 8 {
		return "", errors.New("password shorter than 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// optionalAuth authenticates when a bearer token is present (an invalid one
// is still 401) and lets anonymous requests through.
func (s *Server) optionalAuth(c *fiber.Ctx) error {
	if c.Get(fiber.HeaderAuthorization) == "" {
		return c.Next()
	}
	return s.authenticate(c)
}
