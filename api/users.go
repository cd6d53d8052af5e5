package api

import (
	"context"
	"database/sql"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

type userRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
	VendorID int64  `json:"vendor_id"`
}

type userPatchRequest struct {
	Role     *string `json:"role"`
	VendorID *int64  `json:"vendor_id"`
	Disabled *bool   `json:"disabled"`
	Password *string `json:"password"`
}

type userResponse struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	VendorID  int64     `json:"vendor_id,omitempty"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

type meResponse struct {
	userResponse
	Tenant struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"tenant"`
}

func toUser(u store.User) userResponse {
	return userResponse{ID: u.ID, Email: u.Email, Role: u.Role, VendorID: u.VendorID, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

func (s *Server) me(c *fiber.Ctx) error {
	p := principal(c)
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	u, err := store.GetUser(ctx, s.db, p.TenantID, p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return errUnauthorized("the user no longer exists")
	}
	if err != nil {
		return err
	}
	t, err := store.GetTenant(ctx, s.db, p.TenantID)
	if err != nil {
		return err
	}
	out := meResponse{userResponse: toUser(u)}
	out.Tenant.ID, out.Tenant.Name = t.ID, t.Name
	return c.JSON(out)
}

// checkVendorRole validates the role/vendor pair: vendor users name a vendor
// of the tenant, other roles none.
func (s *Server) checkVendorRole(ctx context.Context, q store.Querier, v *validator, tenantID int64, role string, vendorID int64) error {
	if !store.ValidRole(role) {
		v.add("role", "must be admin, accounting, vendor or viewer")
		return nil
	}
	switch {
	case role == store.RoleVendor && vendorID <= 0:
		v.add("vendor_id", "is required for the vendor role")
	case role != store.RoleVendor && vendorID != 0:
		v.add("vendor_id", "is only for the vendor role")
	case vendorID > 0:
		if _, err := store.GetVendor(ctx, q, tenantID, vendorID); errors.Is(err, store.ErrNotFound) {
			v.add("vendor_id", "no such vendor")
		} else if err != nil {
			return err
		}
	}
	return nil
}

func checkPassword(v *validator, pw string) {
	v.check(len(pw) >= 8, "password", "must be at least 8 characters")
	v.check(len(pw) <= 72, "password", "must be at most 72 bytes")
}

func (s *Server) createUser(c *fiber.Ctx) error {
	var req userRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	req.Email = strings.ToLower(strings.TrimSpace(req.Email))
	a, err := mail.ParseAddress(req.Email)
	v.check(err == nil && a.Address == req.Email && utf8.RuneCountInString(req.Email) <= 254, "email", "must be an email address")
	checkPassword(&v, req.Password)
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		if err := s.checkVendorRole(ctx, tx, &v, p.TenantID, req.Role, req.VendorID); err != nil {
			return result{}, err
		}
		if err := v.err(); err != nil {
			return result{}, err
		}
		hash, err := HashPassword(req.Password)
		if err != nil {
			return result{}, err
		}
		u, err := store.CreateUserRecorded(ctx, tx, store.User{TenantID: p.TenantID, Email: req.Email, PasswordHash: hash, Role: req.Role, VendorID: req.VendorID},
			p.UserID, requestID(c))
		if errors.Is(err, store.ErrConflict) {
			return result{}, errValidation([]FieldError{{Field: "email", Message: "a user with this email already exists"}})
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusCreated, body: toUser(u), location: "/api/users/" + itoa(u.ID)}, nil
	})
}

func (s *Server) getUser(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "user")
	if err != nil {
		return err
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	u, err := store.GetUser(ctx, s.db, principal(c).TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("user")
	}
	if err != nil {
		return err
	}
	return c.JSON(toUser(u))
}

func (s *Server) listUsers(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	role := c.Query("role")
	if role != "" && !store.ValidRole(role) {
		return errValidation([]FieldError{{Field: "role", Message: "must be admin, accounting, vendor or viewer"}})
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	us, total, err := store.ListUsers(ctx, s.db, principal(c).TenantID, store.UserFilter{Role: role, Page: store.Page{Number: page, Size: perPage}})
	if err != nil {
		return err
	}
	return c.JSON(newList(us, total, page, perPage, toUser))
}

func (s *Server) updateUser(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "user")
	if err != nil {
		return err
	}
	var req userPatchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	if id == p.UserID && ((req.Disabled != nil && *req.Disabled) || (req.Role != nil && *req.Role != store.RoleAdmin)) {
		return errConflict("you cannot disable yourself or give up your own admin role")
	}
	var v validator
	patch := store.UserPatch{Role: req.Role, VendorID: req.VendorID, Disabled: req.Disabled}
	if req.Password != nil {
		checkPassword(&v, *req.Password)
		if len(v.errs) == 0 {
			hash, err := HashPassword(*req.Password)
			if err != nil {
				return err
			}
			patch.PasswordHash = &hash
		}
	}
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		cur, err := store.GetUser(ctx, tx, p.TenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			return result{}, errNotFound("user")
		}
		if err != nil {
			return result{}, err
		}
		role, vendor := cur.Role, cur.VendorID
		if req.Role != nil {
			role = *req.Role
			if role != store.RoleVendor && req.VendorID == nil {
				vendor = 0
			}
		}
		if req.VendorID != nil {
			vendor = *req.VendorID
		}
		if err := s.checkVendorRole(ctx, tx, &v, p.TenantID, role, vendor); err != nil {
			return result{}, err
		}
		if err := v.err(); err != nil {
			return result{}, err
		}
		patch.Role, patch.VendorID = &role, &vendor
		u, err := store.UpdateUser(ctx, tx, p.TenantID, id, patch, p.UserID, requestID(c))
		if err != nil {
			return result{}, err
		}
		// This process refuses the user's older tokens at once; the others
		// within IACC_TOKEN_REVOCATION_POLL.
		return result{status: fiber.StatusOK, body: toUser(u), afterCommit: func() { s.revoked.note(u.ID, u.TokenGen) }}, nil
	})
}
