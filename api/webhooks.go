package api

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

// webhookReaders may read endpoints and their deliveries; only admins write.
var webhookReaders = roles(store.RoleAdmin, store.RoleAccounting)

const (
	maxWebhookURL         = 2048
	maxWebhookDescription = 500
	defaultSecretOverlap  = 24 * time.Hour
	maxSecretOverlap      = 7 * 24 * time.Hour
)

type webhookRequest struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
	Enabled     *bool    `json:"enabled"` // default true
}

type webhookPatchRequest struct {
	URL         *string   `json:"url"`
	EventTypes  *[]string `json:"event_types"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

type webhookResponse struct {
	ID                      int64      `json:"id"`
	URL                     string     `json:"url"`
	Description             string     `json:"description"`
	EventTypes              []string   `json:"event_types"`
	Enabled                 bool       `json:"enabled"`
	DisabledReason          string     `json:"disabled_reason,omitempty"`
	DisabledAt              *time.Time `json:"disabled_at,omitempty"`
	FailingSince            *time.Time `json:"failing_since,omitempty"`
	SecretRotatedAt         *time.Time `json:"secret_rotated_at,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// webhookCreatedResponse is the only response that carries the secret.
type webhookCreatedResponse struct {
	webhookResponse
	Secret string `json:"secret"`
}

type rotateSecretRequest struct {
	// OverlapSeconds is how long the previous secret keeps signing (as a
	// second signature); 86400 when absent, at most 7 days.
	OverlapSeconds *int64 `json:"overlap_seconds"`
}

type rotateSecretResponse struct {
	Secret                  string    `json:"secret"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

type webhookTestResponse struct {
	EndpointID int64  `json:"endpoint_id"`
	EventID    int64  `json:"event_id"`
	Type       string `json:"type"`
}

type webhookAttemptResponse struct {
	Attempt         int        `json:"attempt"`
	Round           int        `json:"round"`
	StartedAt       time.Time  `json:"started_at"`
	DurationMS      int64      `json:"duration_ms"`
	StatusCode      int        `json:"status_code,omitempty"`
	ResponseExcerpt string     `json:"response_excerpt,omitempty"`
	Error           string     `json:"error,omitempty"`
	NextAttemptAt   *time.Time `json:"next_attempt_at,omitempty"`
}

type webhookDeliveryResponse struct {
	ID            int64                    `json:"id"`
	EndpointID    int64                    `json:"endpoint_id"`
	EventID       int64                    `json:"event_id"`
	EventType     string                   `json:"event_type"`
	WebhookID     string                   `json:"webhook_id"`
	State         string                   `json:"state"`
	Round         int                      `json:"round"`
	Attempts      int                      `json:"attempts"`
	LastStatus    int                      `json:"last_status,omitempty"`
	LastError     string                   `json:"last_error,omitempty"`
	NextAttemptAt *time.Time               `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time               `json:"delivered_at,omitempty"`
	CreatedAt     time.Time                `json:"created_at"`
	UpdatedAt     time.Time                `json:"updated_at"`
	AttemptLog    []webhookAttemptResponse `json:"attempt_log"`
}

func toWebhook(e store.WebhookEndpoint) webhookResponse {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	return webhookResponse{ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: types, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, DisabledAt: e.DisabledAt, FailingSince: e.FailingSince, SecretRotatedAt: e.SecretRotatedAt,
		PreviousSecretExpiresAt: e.PreviousSecretExpiresAt, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

func toWebhookDelivery(d store.WebhookDelivery, attempts []store.WebhookAttempt) webhookDeliveryResponse {
	out := webhookDeliveryResponse{ID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType, WebhookID: d.MsgID,
		State: d.State, Round: d.Round, Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError, NextAttemptAt: d.NextAttemptAt,
		DeliveredAt: d.DeliveredAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, AttemptLog: make([]webhookAttemptResponse, 0, len(attempts))}
	for _, a := range attempts {
		out.AttemptLog = append(out.AttemptLog, webhookAttemptResponse{Attempt: a.Attempt, Round: a.Round, StartedAt: a.StartedAt,
			DurationMS: a.Duration.Milliseconds(), StatusCode: a.StatusCode, ResponseExcerpt: a.ResponseExcerpt, Error: a.Error, NextAttemptAt: a.NextAttemptAt})
	}
	return out
}

// checkWebhookURL accepts absolute http and https URLs with a host and no
// credentials. Which addresses and ports are reachable is decided when
// delivering, after DNS (see worker/webhook's Guard).
func checkWebhookURL(v *validator, raw *string) {
	*raw = strings.TrimSpace(*raw)
	s := *raw
	if s == "" {
		v.add("url", "is required")
		return
	}
	if len(s) > maxWebhookURL {
		v.add("url", "must be at most 2048 bytes")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Opaque != "":
		v.add("url", "must be an absolute http or https URL")
	case u.Scheme != "https" && u.Scheme != "http":
		v.add("url", "must be an http or https URL")
	case u.Hostname() == "":
		v.add("url", "must name a host")
	case u.User != nil:
		v.add("url", "must not carry credentials")
	case u.Fragment != "" || strings.Contains(s, "#"):
		v.add("url", "must not have a fragment")
	}
}

func checkEventTypes(v *validator, types []string) {
	if len(types) == 0 {
		v.add("event_types", "must name at least one event type")
		return
	}
	known := store.EventTypes()
	for _, t := range types {
		if !slices.Contains(known, t) {
			v.add("event_types", "unknown event type "+quote(t)+"; known: "+strings.Join(known, ", "))
			return
		}
	}
}

func checkWebhookDescription(v *validator, d string) {
	v.check(utf8.RuneCountInString(d) <= maxWebhookDescription, "description", "must be at most 500 characters")
	v.check(utf8.ValidString(d), "description", "must be valid UTF-8")
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

func (s *Server) createWebhook(c *fiber.Ctx) error {
	var req webhookRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	checkWebhookURL(&v, &req.URL)
	checkEventTypes(&v, req.EventTypes)
	checkWebhookDescription(&v, req.Description)
	if err := v.err(); err != nil {
		return err
	}
	enabled := req.Enabled == nil || *req.Enabled
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		e, err := store.CreateWebhookEndpoint(ctx, tx, store.WebhookEndpoint{TenantID: p.TenantID, URL: req.URL, Description: req.Description,
			EventTypes: req.EventTypes, Enabled: enabled}, p.UserID, requestID(c))
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusCreated, body: webhookCreatedResponse{webhookResponse: toWebhook(e), Secret: e.Secret},
			location: "/api/webhooks/" + itoa(e.ID)}, nil
	})
}

func (s *Server) listWebhooks(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	eps, total, err := store.ListWebhookEndpoints(ctx, s.db, principal(c).TenantID, store.WebhookEndpointFilter{Page: store.Page{Number: page, Size: perPage}})
	if err != nil {
		return err
	}
	return c.JSON(newList(eps, total, page, perPage, toWebhook))
}

func (s *Server) getWebhook(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "webhook endpoint")
	if err != nil {
		return err
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	e, err := store.GetWebhookEndpoint(ctx, s.db, principal(c).TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("webhook endpoint")
	}
	if err != nil {
		return err
	}
	return c.JSON(toWebhook(e))
}

func (s *Server) updateWebhook(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "webhook endpoint")
	if err != nil {
		return err
	}
	var req webhookPatchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var v validator
	if req.URL != nil {
		checkWebhookURL(&v, req.URL)
	}
	var types []string
	if req.EventTypes != nil {
		types = *req.EventTypes
		if types == nil {
			types = []string{}
		}
		checkEventTypes(&v, types)
	}
	if req.Description != nil {
		checkWebhookDescription(&v, *req.Description)
	}
	if err := v.err(); err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		e, err := store.UpdateWebhookEndpoint(ctx, tx, p.TenantID, id, store.WebhookEndpointPatch{URL: req.URL, Description: req.Description,
			EventTypes: types, Enabled: req.Enabled}, p.UserID, requestID(c))
		if errors.Is(err, store.ErrNotFound) {
			return result{}, errNotFound("webhook endpoint")
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusOK, body: toWebhook(e)}, nil
	})
}

func (s *Server) deleteWebhook(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "webhook endpoint")
	if err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		err := store.DeleteWebhookEndpoint(ctx, tx, p.TenantID, id, p.UserID, requestID(c))
		if errors.Is(err, store.ErrNotFound) {
			return result{}, errNotFound("webhook endpoint")
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusNoContent}, nil
	})
}

func (s *Server) rotateWebhookSecret(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "webhook endpoint")
	if err != nil {
		return err
	}
	overlap := defaultSecretOverlap
	if len(c.Request().Body()) > 0 {
		var req rotateSecretRequest
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		if req.OverlapSeconds != nil {
			n := *req.OverlapSeconds
			if n < 0 || n > int64(maxSecretOverlap/time.Second) {
				return errValidation([]FieldError{{Field: "overlap_seconds", Message: "must be from 0 to 604800 (7 days)"}})
			}
			overlap = time.Duration(n) * time.Second
		}
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		e, err := store.RotateWebhookSecret(ctx, tx, p.TenantID, id, overlap, p.UserID, requestID(c))
		if errors.Is(err, store.ErrNotFound) {
			return result{}, errNotFound("webhook endpoint")
		}
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusOK, body: rotateSecretResponse{Secret: e.Secret, PreviousSecretExpiresAt: *e.PreviousSecretExpiresAt}}, nil
	})
}

func (s *Server) testWebhook(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "webhook endpoint")
	if err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		ev, err := store.RequestWebhookTest(ctx, tx, p.TenantID, id, p.UserID, requestID(c))
		switch {
		case errors.Is(err, store.ErrNotFound):
			return result{}, errNotFound("webhook endpoint")
		case errors.Is(err, store.ErrConflict):
			return result{}, errConflict("the webhook endpoint is disabled; enable it first")
		case err != nil:
			return result{}, err
		}
		return result{status: fiber.StatusAccepted, body: webhookTestResponse{EndpointID: id, EventID: ev.ID, Type: ev.Type}, events: []store.Event{ev}}, nil
	})
}

func (s *Server) listWebhookDeliveries(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "webhook endpoint")
	if err != nil {
		return err
	}
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	state := c.Query("state")
	if state != "" && state != store.WebhookPending && state != store.WebhookSucceeded && state != store.WebhookFailed {
		return errValidation([]FieldError{{Field: "state", Message: "must be pending, succeeded or failed"}})
	}
	tenantID := principal(c).TenantID
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	if _, err := store.GetWebhookEndpoint(ctx, s.db, tenantID, id); errors.Is(err, store.ErrNotFound) {
		return errNotFound("webhook endpoint")
	} else if err != nil {
		return err
	}
	ds, total, err := store.ListWebhookDeliveries(ctx, s.db, tenantID, id, store.WebhookDeliveryFilter{State: state, Page: store.Page{Number: page, Size: perPage}})
	if err != nil {
		return err
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	attempts, err := store.ListWebhookAttempts(ctx, s.db, ids)
	if err != nil {
		return err
	}
	return c.JSON(newList(ds, total, page, perPage, func(d store.WebhookDelivery) webhookDeliveryResponse {
		return toWebhookDelivery(d, attempts[d.ID])
	}))
}

// webhookDelivery loads a delivery of the endpoint named in the path.
func (s *Server) webhookDelivery(ctx context.Context, c *fiber.Ctx) (store.WebhookDelivery, error) {
	id, err := idParam(c, "id", "webhook endpoint")
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	did, err := idParam(c, "delivery_id", "webhook delivery")
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	d, err := store.GetWebhookDelivery(ctx, s.db, principal(c).TenantID, did)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.EndpointID != id) {
		return store.WebhookDelivery{}, errNotFound("webhook delivery")
	}
	return d, err
}

func (s *Server) getWebhookDelivery(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	d, err := s.webhookDelivery(ctx, c)
	if err != nil {
		return err
	}
	attempts, err := store.ListWebhookAttempts(ctx, s.db, []int64{d.ID})
	if err != nil {
		return err
	}
	return c.JSON(toWebhookDelivery(d, attempts[d.ID]))
}

func (s *Server) retryWebhookDelivery(c *fiber.Ctx) error {
	id, err := idParam(c, "id", "webhook endpoint")
	if err != nil {
		return err
	}
	did, err := idParam(c, "delivery_id", "webhook delivery")
	if err != nil {
		return err
	}
	p := principal(c)
	return s.mutate(c, func(ctx context.Context, tx *sql.Tx) (result, error) {
		d, ev, err := store.RetryWebhookDelivery(ctx, tx, p.TenantID, id, did, p.UserID, requestID(c))
		switch {
		case errors.Is(err, store.ErrNotFound):
			return result{}, errNotFound("webhook delivery")
		case errors.Is(err, store.ErrConflict) && strings.Contains(err.Error(), "disabled"):
			return result{}, errConflict("the webhook endpoint is disabled; enable it first")
		case errors.Is(err, store.ErrConflict):
			return result{}, errConflict("the delivery is still pending; it is retried on its schedule")
		case err != nil:
			return result{}, err
		}
		attempts, err := store.ListWebhookAttempts(ctx, tx, []int64{d.ID})
		if err != nil {
			return result{}, err
		}
		return result{status: fiber.StatusAccepted, body: toWebhookDelivery(d, attempts[d.ID]), events: []store.Event{ev}}, nil
	})
}
