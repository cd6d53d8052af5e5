package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"golang.org/x/crypto/bcrypt"

	"github.com/iacc/iacc/dashboards"
	"github.com/iacc/iacc/store"
)

// The queue dashboard (asynqmon) is mounted twice, because asynqmon's
// read-only switch covers a whole handler: read-write for admins, read-only
// for accounting and viewer users and the ops token.
// dashboardCSP lets the asynqmon single-page app run (its own scripts and
// styles, an inline bootstrap script, web fonts from Google if reachable),
// and nothing else in; the API's "default-src 'none'" would blank it.
const dashboardCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; " +
	"font-src 'self' data: https://fonts.gstatic.com; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"

const (
	monitoringPath   = "/monitoring"
	monitoringROPath = "/monitoring-readonly"
	roleOps          = "ops" // the IACC_DASHBOARD_TOKEN holder: read-only
)

// monitoringRO serves the read-only dashboard (mounted by the route table,
// before the read-write one: "/monitoring" is a prefix of its path).
func (s *Server) monitoringRO() fiber.Handler {
	ro := adaptor.HTTPHandler(dashboards.Queues(monitoringROPath, s.rdb, true))
	return func(c *fiber.Ctx) error {
		if !slices.Contains([]string{store.RoleAdmin, store.RoleAccounting, store.RoleViewer, roleOps}, principal(c).Role) {
			return errForbidden()
		}
		c.Set("Content-Security-Policy", dashboardCSP)
		return ro(c)
	}
}

// monitoringRW serves the read-write dashboard to admins and sends the
// other dashboard users to the read-only one.
func (s *Server) monitoringRW() fiber.Handler {
	rw := adaptor.HTTPHandler(dashboards.Queues(monitoringPath, s.rdb, false))
	return func(c *fiber.Ctx) error {
		switch principal(c).Role {
		case store.RoleAdmin:
			c.Set("Content-Security-Policy", dashboardCSP)
			return rw(c)
		case store.RoleAccounting, store.RoleViewer, roleOps:
			if c.Method() == fiber.MethodGet && !strings.Contains(c.Path(), "/api/") {
				return c.Redirect(monitoringROPath, fiber.StatusFound)
			}
		}
		return errForbidden()
	}
}

// dashboardAuth accepts, for a browser as well as for scripts: a bearer
// access token; HTTP Basic with an iacc user's email and password (the
// browser prompts); or the ops token (IACC_DASHBOARD_TOKEN) as a bearer
// token or as the Basic password.
func (s *Server) dashboardAuth(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer") && s.isOpsToken(cred):
		c.Locals(principalKey{}, Principal{Role: roleOps})
		return c.Next()
	case strings.EqualFold(scheme, "Bearer"):
		return s.authenticate(c)
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := parseBasic(cred)
		if ok && s.isOpsToken(pass) {
			c.Locals(principalKey{}, Principal{Role: roleOps})
			return c.Next()
		}
		if ok {
			p, err := s.basicLogin(c, user, pass)
			if err == nil {
				c.Locals(principalKey{}, p)
				return c.Next()
			}
			if !errors.Is(err, errBadCredentials) {
				return err
			}
		}
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="iacc queues", charset="UTF-8"`)
	return errUnauthorized("log in with your iacc email and password, a bearer token, or the ops token")
}

func (s *Server) isOpsToken(tok string) bool {
	want := s.cfg.DashboardToken
	return want != "" && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(want)) == 1
}

var errBadCredentials = errors.New("bad credentials")

// basicLogin checks email and password, remembering a success for a few
// minutes: a dashboard page loads dozens of assets, each with the same
// Basic header, and bcrypt costs tens of milliseconds. A remembered login
// whose user was since revoked (disabled, new role or password) is checked
// again against the database.
func (s *Server) basicLogin(c *fiber.Ctx, email, password string) (Principal, error) {
	key := sha256.Sum256([]byte(strings.ToLower(email) + "\x00" + password))
	if p, ok := s.basicCache.get(key, time.Now()); ok && !s.revoked.revoked(p.UserID, p.TokenGen) {
		return p, nil
	}
	if len(password) > 72 {
		return Principal{}, errBadCredentials
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	guard := loginGuard{s}
	if blocked, retry := guard.reserve(ctx, email, c.IP()); blocked {
		return Principal{}, rateLimited(retry, "too many failed logins; try again later")
	}
	u, err := store.GetUserByEmail(ctx, s.db, strings.ToLower(strings.TrimSpace(email)))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Principal{}, err
	}
	hash := dummyHash
	if err == nil {
		hash = []byte(u.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil || u.Disabled {
		return Principal{}, errBadCredentials
	}
	guard.succeeded(ctx, email, c.IP())
	p := Principal{UserID: u.ID, TenantID: u.TenantID, Role: u.Role, VendorID: u.VendorID, TokenGen: u.TokenGen}
	s.basicCache.put(key, p, time.Now().Add(credTTL))
	return p, nil
}

// credCache remembers verified credentials (Basic logins, access tokens)
// until an expiry per entry, keyed by a SHA-256 of the credential. It holds
// at most max entries: when full it starts over, which costs only a
// verification per credential.
type credCache struct {
	max int
	mu  sync.RWMutex
	m   map[[32]byte]credEntry
}

type credEntry struct {
	p       Principal
	expires time.Time
}

const credTTL = 2 * time.Minute

func (cc *credCache) get(k [32]byte, now time.Time) (Principal, bool) {
	cc.mu.RLock()
	e, ok := cc.m[k]
	cc.mu.RUnlock()
	if !ok || now.After(e.expires) {
		return Principal{}, false
	}
	return e.p, true
}

func (cc *credCache) put(k [32]byte, p Principal, expires time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil || len(cc.m) >= cc.max {
		cc.m = map[[32]byte]credEntry{}
	}
	cc.m[k] = credEntry{p: p, expires: expires}
}
