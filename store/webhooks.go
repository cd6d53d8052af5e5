package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Internal event types of the webhook feature. They go through the outbox
// like every other follow-up work (so a test or a manual retry survives a
// Redis outage) but are not in EventTypes(): nobody subscribes to them.
const (
	// EventWebhookTest asks for a test delivery to one endpoint
	// (payload: {"endpoint_id"}).
	EventWebhookTest = "webhook.test"
	// EventWebhookRetry asks for a new round of attempts of one delivery
	// (payload: WebhookRetryRequest).
	EventWebhookRetry = "webhook.delivery_retry"
)

// Webhook delivery states.
const (
	WebhookPending   = "pending"   // waiting for (another) attempt
	WebhookSucceeded = "succeeded" // a 2xx answer was received
	WebhookFailed    = "failed"    // given up (schedule exhausted, endpoint disabled or gone)
)

// Reasons an endpoint is disabled.
const (
	WebhookDisabledManual  = "manual"  // by an admin
	WebhookDisabledGone    = "gone"    // the receiver answered 410 Gone
	WebhookDisabledFailing = "failing" // failed without a break for too long
)

// WebhookSecretPrefix starts every endpoint signing secret.
const WebhookSecretPrefix = "whsec_"

// NewWebhookSecret returns a fresh signing secret: "whsec_" and the base64
// of 32 random bytes (the HMAC key is the decoded part).
func NewWebhookSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// WebhookEndpoint is a URL of a tenant that receives signed event deliveries.
type WebhookEndpoint struct {
	ID                      int64
	TenantID                int64
	URL                     string
	Description             string
	EventTypes              []string // sorted
	Enabled                 bool
	DisabledReason          string
	DisabledAt              *time.Time
	DisabledNotifiedAt      *time.Time
	FailingSince            *time.Time
	Secret                  string // "" when it could not be opened (secretErr)
	PreviousSecret          string
	PreviousSecretExpiresAt *time.Time
	SecretRotatedAt         *time.Time
	CreatedAt               time.Time
	UpdatedAt               time.Time

	// secretErr is why the stored secrets could not be opened (a key
	// missing from IACC_SECRET_KEYS): only signing needs them, so the
	// endpoint loads anyway, and SigningSecrets reports it.
	secretErr error
}

// SigningSecrets are the secrets deliveries are signed with at t: the
// current one and, during a rotation's overlap window, the previous one.
// It fails when the stored secrets could not be opened.
func (e WebhookEndpoint) SigningSecrets(t time.Time) ([]string, error) {
	if e.secretErr != nil {
		return nil, e.secretErr
	}
	out := []string{e.Secret}
	if e.PreviousSecret != "" && e.PreviousSecretExpiresAt != nil && t.Before(*e.PreviousSecretExpiresAt) {
		out = append(out, e.PreviousSecret)
	}
	return out, nil
}

// Subscribes reports whether the endpoint wants events of type t.
func (e WebhookEndpoint) Subscribes(t string) bool { return slices.Contains(e.EventTypes, t) }

// webhookEndpointJSON is the endpoint as audit entries carry it: never a secret.
type webhookEndpointJSON struct {
	ID             int64    `json:"id"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	EventTypes     []string `json:"event_types"`
	Enabled        bool     `json:"enabled"`
	DisabledReason string   `json:"disabled_reason,omitempty"`
}

func webhookEndpointSummary(e WebhookEndpoint) webhookEndpointJSON {
	return webhookEndpointJSON{ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: e.EventTypes, Enabled: e.Enabled, DisabledReason: e.DisabledReason}
}

const webhookEndpointCols = `id, tenant_id, url, description, enabled, disabled_reason, disabled_at, disabled_notified_at, failing_since,
	secret, previous_secret, previous_secret_expires_at, secret_rotated_at, created_at, updated_at`

// webhookSecretColumn is the additional data of sealed signing secrets
// (current and previous: the previous one is a former current one).
const webhookSecretColumn = "webhook_endpoints.secret"

// webhookEndpointDest is the scan destination of webhookEndpointCols into e,
// and what completes e after the scan: it opens the sealed secrets (or
// records in secretErr why it could not).
func webhookEndpointDest(e *WebhookEndpoint) (dest []any, done func()) {
	var disabledAt, notifiedAt, failingSince, prevExpires, rotatedAt sql.NullTime
	var prev sql.NullString
	return []any{&e.ID, &e.TenantID, &e.URL, &e.Description, &e.Enabled, &e.DisabledReason, &disabledAt, &notifiedAt, &failingSince,
			&e.Secret, &prev, &prevExpires, &rotatedAt, &e.CreatedAt, &e.UpdatedAt}, func() {
			e.DisabledAt, e.DisabledNotifiedAt, e.FailingSince = optTime(disabledAt), optTime(notifiedAt), optTime(failingSince)
			e.PreviousSecretExpiresAt, e.SecretRotatedAt = optTime(prevExpires), optTime(rotatedAt)
			secret, err := openColumn(e.Secret, webhookSecretColumn)
			if err == nil {
				e.PreviousSecret, err = openColumn(prev.String, webhookSecretColumn)
			}
			if err != nil {
				e.Secret, e.PreviousSecret = "", ""
				e.secretErr = fmt.Errorf("webhook endpoint %d: %w", e.ID, err)
				return
			}
			e.Secret = secret
		}
}

func scanWebhookEndpoint(row interface{ Scan(...any) error }) (WebhookEndpoint, error) {
	var e WebhookEndpoint
	dest, done := webhookEndpointDest(&e)
	if err := row.Scan(dest...); err != nil {
		return WebhookEndpoint{}, err
	}
	done()
	return e, nil
}

func optTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time
	return &v
}

func sqlTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

// loadSubscriptions fills the event types of the endpoints.
func loadSubscriptions(ctx context.Context, q Querier, eps []WebhookEndpoint) error {
	if len(eps) == 0 {
		return nil
	}
	args := make([]any, len(eps))
	idx := make(map[int64]int, len(eps))
	for i, e := range eps {
		args[i] = e.ID
		idx[e.ID] = i
		eps[i].EventTypes = []string{}
	}
	rows, err := q.QueryContext(ctx, `SELECT endpoint_id, event_type FROM webhook_subscriptions WHERE endpoint_id IN (`+placeholders(len(eps))+`)
		ORDER BY endpoint_id, event_type`, args...)
	if err != nil {
		return fmt.Errorf("list webhook subscriptions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var typ string
		if err := rows.Scan(&id, &typ); err != nil {
			return fmt.Errorf("scan webhook subscription: %w", err)
		}
		if i, ok := idx[id]; ok {
			eps[i].EventTypes = append(eps[i].EventTypes, typ)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list webhook subscriptions: %w", err)
	}
	return nil
}

func setSubscriptions(ctx context.Context, q Querier, e WebhookEndpoint) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM webhook_subscriptions WHERE endpoint_id = ?`, e.ID); err != nil {
		return fmt.Errorf("replace webhook %d subscriptions: %w", e.ID, err)
	}
	if len(e.EventTypes) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(e.EventTypes))
	for _, t := range e.EventTypes {
		args = append(args, e.ID, e.TenantID, t)
	}
	_, err := q.ExecContext(ctx, `INSERT INTO webhook_subscriptions (endpoint_id, tenant_id, event_type) VALUES `+
		strings.TrimSuffix(strings.Repeat("(?,?,?),", len(e.EventTypes)), ","), args...)
	if err != nil {
		return mapErr(err, fmt.Sprintf("insert webhook %d subscriptions", e.ID))
	}
	return nil
}

func normalizeTypes(types []string) []string {
	out := slices.Clone(types)
	slices.Sort(out)
	return slices.Compact(out)
}

// CreateWebhookEndpoint inserts an endpoint with a fresh secret (returned in
// Secret, the only time a caller sees it) and its audit entry. An endpoint
// created disabled is disabled by hand ("manual").
func CreateWebhookEndpoint(ctx context.Context, q Querier, e WebhookEndpoint, actorID int64, requestID string) (WebhookEndpoint, error) {
	secret, err := NewWebhookSecret()
	if err != nil {
		return WebhookEndpoint{}, err
	}
	e.Secret = secret
	e.EventTypes = normalizeTypes(e.EventTypes)
	e.CreatedAt = now()
	e.UpdatedAt = e.CreatedAt
	e.DisabledReason, e.DisabledAt = "", nil
	if !e.Enabled {
		e.DisabledReason, e.DisabledAt = WebhookDisabledManual, &e.CreatedAt
	}
	sealed, err := sealColumn(e.Secret, webhookSecretColumn)
	if err != nil {
		return WebhookEndpoint{}, err
	}
	res, err := q.ExecContext(ctx, `INSERT INTO webhook_endpoints (tenant_id, url, description, enabled, disabled_reason, disabled_at, secret, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.TenantID, e.URL, e.Description, e.Enabled, e.DisabledReason, sqlTime(e.DisabledAt), sealed, e.CreatedAt, e.UpdatedAt)
	if err != nil {
		return WebhookEndpoint{}, mapErr(err, "insert webhook endpoint")
	}
	if e.ID, err = res.LastInsertId(); err != nil {
		return WebhookEndpoint{}, fmt.Errorf("insert webhook endpoint: %w", err)
	}
	if err := setSubscriptions(ctx, q, e); err != nil {
		return WebhookEndpoint{}, err
	}
	_, err = RecordChange(ctx, q, Change{TenantID: e.TenantID, ActorID: actorID, RequestID: requestID, Action: "webhook_endpoint.create",
		EntityType: "webhook_endpoint", EntityID: e.ID, After: webhookEndpointSummary(e)})
	return e, err
}

// GetWebhookEndpoint loads one endpoint of a tenant with its event types.
func GetWebhookEndpoint(ctx context.Context, q Querier, tenantID, id int64) (WebhookEndpoint, error) {
	return getWebhookEndpoint(ctx, q, tenantID, id, "")
}

// GetWebhookEndpointRow loads one endpoint without its event types (nil):
// what a delivery needs (URL, secrets, state), in one statement.
func GetWebhookEndpointRow(ctx context.Context, q Querier, tenantID, id int64) (WebhookEndpoint, error) {
	return getWebhookEndpointRow(ctx, q, tenantID, id, "")
}

func getWebhookEndpointRow(ctx context.Context, q Querier, tenantID, id int64, lock string) (WebhookEndpoint, error) {
	e, err := scanWebhookEndpoint(q.QueryRowContext(ctx, `SELECT `+webhookEndpointCols+` FROM webhook_endpoints WHERE tenant_id = ? AND id = ?`+lock, tenantID, id))
	return e, mapErr(err, fmt.Sprintf("get webhook endpoint %d", id))
}

func getWebhookEndpoint(ctx context.Context, q Querier, tenantID, id int64, lock string) (WebhookEndpoint, error) {
	e, err := getWebhookEndpointRow(ctx, q, tenantID, id, lock)
	if err != nil {
		return WebhookEndpoint{}, err
	}
	eps := []WebhookEndpoint{e}
	if err := loadSubscriptions(ctx, q, eps); err != nil {
		return WebhookEndpoint{}, err
	}
	return eps[0], nil
}

// WebhookEndpointFilter narrows ListWebhookEndpoints.
type WebhookEndpointFilter struct {
	Page Page
}

// ListWebhookEndpoints returns one page of a tenant's endpoints, newest first, and the total.
func ListWebhookEndpoints(ctx context.Context, q Querier, tenantID int64, f WebhookEndpointFilter) ([]WebhookEndpoint, int, error) {
	w := where{sql: "tenant_id = ?", args: []any{tenantID}}
	eps, total, err := listPage(ctx, q, "webhook_endpoints", webhookEndpointCols, w, f.Page, scanWebhookEndpoint)
	if err != nil {
		return nil, 0, err
	}
	return eps, total, loadSubscriptions(ctx, q, eps)
}

// WebhookEndpointPatch holds the fields an update may change (nil: unchanged).
type WebhookEndpointPatch struct {
	URL         *string
	Description *string
	EventTypes  []string // nil: unchanged
	Enabled     *bool
}

// UpdateWebhookEndpoint applies a patch under a row lock and records it.
// Enabling an endpoint clears its disabled and failing state; disabling it
// by hand records the reason "manual".
func UpdateWebhookEndpoint(ctx context.Context, q Querier, tenantID, id int64, p WebhookEndpointPatch, actorID int64, requestID string) (WebhookEndpoint, error) {
	e, err := getWebhookEndpoint(ctx, q, tenantID, id, " FOR UPDATE")
	if err != nil {
		return WebhookEndpoint{}, err
	}
	before := webhookEndpointSummary(e)
	if p.URL != nil {
		e.URL = *p.URL
	}
	if p.Description != nil {
		e.Description = *p.Description
	}
	if p.Enabled != nil && *p.Enabled != e.Enabled {
		e.Enabled = *p.Enabled
		if e.Enabled {
			e.DisabledReason, e.DisabledAt, e.DisabledNotifiedAt, e.FailingSince = "", nil, nil, nil
		} else {
			t := now()
			e.DisabledReason, e.DisabledAt = WebhookDisabledManual, &t
		}
	}
	e.UpdatedAt = now()
	if _, err := q.ExecContext(ctx, `UPDATE webhook_endpoints SET url = ?, description = ?, enabled = ?, disabled_reason = ?, disabled_at = ?,
		disabled_notified_at = ?, failing_since = ?, updated_at = ? WHERE id = ?`,
		e.URL, e.Description, e.Enabled, e.DisabledReason, sqlTime(e.DisabledAt), sqlTime(e.DisabledNotifiedAt), sqlTime(e.FailingSince), e.UpdatedAt, e.ID); err != nil {
		return WebhookEndpoint{}, mapErr(err, fmt.Sprintf("update webhook endpoint %d", id))
	}
	if p.EventTypes != nil {
		e.EventTypes = normalizeTypes(p.EventTypes)
		if err := setSubscriptions(ctx, q, e); err != nil {
			return WebhookEndpoint{}, err
		}
	}
	_, err = RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "webhook_endpoint.update",
		EntityType: "webhook_endpoint", EntityID: e.ID, Before: before, After: webhookEndpointSummary(e)})
	return e, err
}

// DeleteWebhookEndpoint deletes an endpoint with its subscriptions,
// deliveries and attempts, and records it. Delivery tasks still queued for
// it find nothing to do.
func DeleteWebhookEndpoint(ctx context.Context, q Querier, tenantID, id int64, actorID int64, requestID string) error {
	e, err := getWebhookEndpoint(ctx, q, tenantID, id, " FOR UPDATE")
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete webhook endpoint %d: %w", id, err)
	}
	_, err = RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "webhook_endpoint.delete",
		EntityType: "webhook_endpoint", EntityID: id, Before: webhookEndpointSummary(e)})
	return err
}

// RotateWebhookSecret gives the endpoint a new secret (returned in Secret).
// The old one keeps signing, as a second signature, for overlap (none when
// overlap is 0), so receivers can switch without losing deliveries.
func RotateWebhookSecret(ctx context.Context, q Querier, tenantID, id int64, overlap time.Duration, actorID int64, requestID string) (WebhookEndpoint, error) {
	e, err := getWebhookEndpoint(ctx, q, tenantID, id, " FOR UPDATE")
	if err != nil {
		return WebhookEndpoint{}, err
	}
	secret, err := NewWebhookSecret()
	if err != nil {
		return WebhookEndpoint{}, err
	}
	t := now()
	expires := t.Add(overlap)
	if e.secretErr != nil {
		// The old secret cannot be opened (its key is lost): nothing can
		// sign with it, so there is no overlap.
		e.Secret, expires, e.secretErr = "", t, nil
	}
	e.PreviousSecret, e.PreviousSecretExpiresAt, e.Secret, e.SecretRotatedAt, e.UpdatedAt = e.Secret, &expires, secret, &t, t
	sealedPrev, err := sealColumn(e.PreviousSecret, webhookSecretColumn)
	if err != nil {
		return WebhookEndpoint{}, err
	}
	sealed, err := sealColumn(e.Secret, webhookSecretColumn)
	if err != nil {
		return WebhookEndpoint{}, err
	}
	if _, err := q.ExecContext(ctx, `UPDATE webhook_endpoints SET previous_secret = ?, previous_secret_expires_at = ?, secret = ?,
		secret_rotated_at = ?, updated_at = ? WHERE id = ?`, sealedPrev, expires, sealed, t, t, e.ID); err != nil {
		return WebhookEndpoint{}, fmt.Errorf("rotate webhook endpoint %d secret: %w", id, err)
	}
	_, err = RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "webhook_endpoint.rotate_secret",
		EntityType: "webhook_endpoint", EntityID: e.ID, After: map[string]any{"previous_secret_expires_at": expires}})
	return e, err
}

// RequestWebhookTest records a request for a test delivery to an endpoint:
// an outbox event of type EventWebhookTest, dispatched to that endpoint only.
// A disabled endpoint is ErrConflict.
func RequestWebhookTest(ctx context.Context, q Querier, tenantID, id int64, actorID int64, requestID string) (Event, error) {
	ep, err := GetWebhookEndpoint(ctx, q, tenantID, id)
	if err != nil {
		return Event{}, err
	}
	if !ep.Enabled {
		return Event{}, fmt.Errorf("test webhook endpoint %d: it is disabled: %w", id, ErrConflict)
	}
	return RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "webhook_endpoint.test",
		EntityType: "webhook_endpoint", EntityID: id, EventType: EventWebhookTest,
		EventPayload: WebhookTestRequest{EndpointID: id, Message: "This is a test event from iacc."}})
}

// WebhookTestRequest is the payload of an EventWebhookTest event (and the
// data a test delivery carries).
type WebhookTestRequest struct {
	EndpointID int64  `json:"endpoint_id"`
	Message    string `json:"message"`
}

// DisableWebhookEndpoint disables an enabled endpoint for reason (gone,
// failing) at t and records it as a system change. It reports whether this
// call disabled it (false: it was disabled already).
func DisableWebhookEndpoint(ctx context.Context, q Querier, tenantID, id int64, reason string, t time.Time) (bool, error) {
	t = t.UTC().Truncate(time.Microsecond)
	res, err := q.ExecContext(ctx, `UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = ?, disabled_at = ?, disabled_notified_at = NULL,
		updated_at = ? WHERE tenant_id = ? AND id = ? AND enabled`, reason, t, t, tenantID, id)
	if err != nil {
		return false, fmt.Errorf("disable webhook endpoint %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("disable webhook endpoint %d: %w", id, err)
	}
	if n == 0 {
		return false, nil
	}
	_, err = RecordChange(ctx, q, Change{TenantID: tenantID, Action: "webhook_endpoint.disable", EntityType: "webhook_endpoint", EntityID: id,
		After: map[string]any{"enabled": false, "disabled_reason": reason}})
	return true, err
}

// MarkWebhookDisableNotified records that the admins were told of the
// endpoint's automatic disable at disabledAt (a later disable is told anew).
func MarkWebhookDisableNotified(ctx context.Context, q Querier, id int64, disabledAt time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE webhook_endpoints SET disabled_notified_at = ? WHERE id = ? AND disabled_at = ?`, now(), id, disabledAt)
	if err != nil {
		return fmt.Errorf("mark webhook endpoint %d disable notified: %w", id, err)
	}
	return nil
}

// WebhookDelivery is one event owed to one endpoint.
type WebhookDelivery struct {
	ID            int64
	TenantID      int64
	EndpointID    int64
	EventID       int64
	EventType     string
	MsgID         string // the webhook-id header, the same on every attempt
	State         string
	Round         int // manual retries so far
	Attempts      int // all attempts
	RoundAttempts int // attempts of the current round
	LastStatus    int
	LastError     string
	NextAttemptAt *time.Time
	LeaseUntil    *time.Time
	DeliveredAt   *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// WebhookMsgID is the webhook-id of an event's delivery to an endpoint:
// stable across attempts, retries and duplicate tasks.
func WebhookMsgID(eventID, endpointID int64) string {
	return fmt.Sprintf("msg_%d_%d", eventID, endpointID)
}

const webhookDeliveryCols = `id, tenant_id, endpoint_id, event_id, event_type, msg_id, state, round, attempts, round_attempts, last_status, last_error,
	next_attempt_at, lease_until, delivered_at, created_at, updated_at`

// webhookDeliveryDest is the scan destination of webhookDeliveryCols into
// d, and what completes d after the scan.
func webhookDeliveryDest(d *WebhookDelivery) (dest []any, done func()) {
	var next, lease, delivered sql.NullTime
	return []any{&d.ID, &d.TenantID, &d.EndpointID, &d.EventID, &d.EventType, &d.MsgID, &d.State, &d.Round, &d.Attempts, &d.RoundAttempts,
			&d.LastStatus, &d.LastError, &next, &lease, &delivered, &d.CreatedAt, &d.UpdatedAt}, func() {
			d.NextAttemptAt, d.LeaseUntil, d.DeliveredAt = optTime(next), optTime(lease), optTime(delivered)
		}
}

func scanWebhookDelivery(row interface{ Scan(...any) error }) (WebhookDelivery, error) {
	var d WebhookDelivery
	dest, done := webhookDeliveryDest(&d)
	if err := row.Scan(dest...); err != nil {
		return WebhookDelivery{}, err
	}
	done()
	return d, nil
}

// EnsureWebhookDeliveries creates the deliveries of an event to the given
// endpoints, keeping those that exist (one delivery per event × endpoint,
// whatever the number of dispatches), and returns them all, by endpoint id.
func EnsureWebhookDeliveries(ctx context.Context, q Querier, ev Event, endpointIDs []int64) ([]WebhookDelivery, error) {
	if len(endpointIDs) == 0 {
		return nil, nil
	}
	t := now()
	var sb strings.Builder
	sb.WriteString(`INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, msg_id, state, next_attempt_at, created_at, updated_at) VALUES `)
	args := make([]any, 0, 9*len(endpointIDs))
	ids := make([]any, 0, len(endpointIDs)+1)
	ids = append(ids, ev.ID)
	for i, epID := range endpointIDs {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?)")
		args = append(args, ev.TenantID, epID, ev.ID, ev.Type, WebhookMsgID(ev.ID, epID), WebhookPending, t, t, t)
		ids = append(ids, epID)
	}
	sb.WriteString(` ON DUPLICATE KEY UPDATE id = id`)
	res, err := q.ExecContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, mapErr(err, fmt.Sprintf("insert webhook deliveries of event %d", ev.ID))
	}
	if len(endpointIDs) == 1 {
		// One row inserted (not found): it is the row just written, and
		// its id is the insert's; no read back.
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("insert webhook deliveries of event %d: %w", ev.ID, err)
		}
		if n == 1 {
			id, err := res.LastInsertId()
			if err != nil {
				return nil, fmt.Errorf("insert webhook deliveries of event %d: %w", ev.ID, err)
			}
			next := t
			return []WebhookDelivery{{ID: id, TenantID: ev.TenantID, EndpointID: endpointIDs[0], EventID: ev.ID, EventType: ev.Type,
				MsgID: WebhookMsgID(ev.ID, endpointIDs[0]), State: WebhookPending, NextAttemptAt: &next, CreatedAt: t, UpdatedAt: t}}, nil
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT `+webhookDeliveryCols+` FROM webhook_deliveries WHERE event_id = ? AND endpoint_id IN (`+
		placeholders(len(endpointIDs))+`) ORDER BY endpoint_id`, ids...)
	if err != nil {
		return nil, fmt.Errorf("read webhook deliveries of event %d: %w", ev.ID, err)
	}
	defer rows.Close()
	var out []WebhookDelivery
	for rows.Next() {
		d, err := scanWebhookDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("scan webhook delivery: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read webhook deliveries of event %d: %w", ev.ID, err)
	}
	return out, nil
}

// GetWebhookDelivery loads one delivery of a tenant.
func GetWebhookDelivery(ctx context.Context, q Querier, tenantID, id int64) (WebhookDelivery, error) {
	d, err := scanWebhookDelivery(q.QueryRowContext(ctx, `SELECT `+webhookDeliveryCols+` FROM webhook_deliveries WHERE tenant_id = ? AND id = ?`, tenantID, id))
	return d, mapErr(err, fmt.Sprintf("get webhook delivery %d", id))
}

// WebhookDeliveryWork is what one attempt at a delivery reads: the
// delivery, its endpoint (without event types) and its event (ID, TenantID
// and Type as the delivery records them; the rest from the event, without
// its publication times). Event.ID is 0 when the event no longer exists
// (retention removed it).
type WebhookDeliveryWork struct {
	Delivery WebhookDelivery
	Endpoint WebhookEndpoint
	Event    Event
}

// GetWebhookDeliveryWork loads a delivery of a tenant with its endpoint
// and its event, in one statement. A delivery whose endpoint is gone is
// ErrNotFound, like a missing delivery.
func GetWebhookDeliveryWork(ctx context.Context, q Querier, tenantID, id int64) (WebhookDeliveryWork, error) {
	var w WebhookDeliveryWork
	deliveryDest, deliveryDone := webhookDeliveryDest(&w.Delivery)
	endpointDest, endpointDone := webhookEndpointDest(&w.Endpoint)
	var payload []byte
	var aggType sql.NullString
	var aggID sql.NullInt64
	var created sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT `+qualify("d", webhookDeliveryCols)+`, `+qualify("e", webhookEndpointCols)+`,
		o.aggregate_type, o.aggregate_id, o.payload, o.created_at
		FROM webhook_deliveries d
		JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.tenant_id = d.tenant_id
		LEFT JOIN outbox_events o ON o.id = d.event_id
		WHERE d.tenant_id = ? AND d.id = ?`, tenantID, id).Scan(append(append(deliveryDest, endpointDest...), &aggType, &aggID, &payload, &created)...)
	if err != nil {
		return WebhookDeliveryWork{}, mapErr(err, fmt.Sprintf("get webhook delivery %d", id))
	}
	deliveryDone()
	endpointDone()
	if d := w.Delivery; created.Valid {
		w.Event = Event{ID: d.EventID, TenantID: d.TenantID, Type: d.EventType, AggregateType: aggType.String, AggregateID: aggID.Int64,
			Payload: payload, CreatedAt: created.Time}
	}
	return w, nil
}

// WebhookDeliveryFilter narrows ListWebhookDeliveries.
type WebhookDeliveryFilter struct {
	State string
	Page  Page
}

// ListWebhookDeliveries returns one page of an endpoint's deliveries, newest first, and the total.
func ListWebhookDeliveries(ctx context.Context, q Querier, tenantID, endpointID int64, f WebhookDeliveryFilter) ([]WebhookDelivery, int, error) {
	w := where{sql: "tenant_id = ? AND endpoint_id = ?", args: []any{tenantID, endpointID}}
	w.eq("state", f.State)
	return listPage(ctx, q, "webhook_deliveries", webhookDeliveryCols, w, f.Page, scanWebhookDelivery)
}

// WebhookRetryRequest is the payload of an EventWebhookRetry event.
type WebhookRetryRequest struct {
	DeliveryID int64 `json:"delivery_id"`
	EndpointID int64 `json:"endpoint_id"`
	Round      int   `json:"round"`
}

// RetryWebhookDelivery starts a new round of attempts of a finished
// (succeeded or failed) delivery: a new schedule, the same webhook-id. It
// emits the EventWebhookRetry event whose dispatch enqueues the round's task.
// A delivery still pending, or one of a disabled endpoint, is ErrConflict.
func RetryWebhookDelivery(ctx context.Context, q Querier, tenantID, endpointID, deliveryID int64, actorID int64, requestID string) (WebhookDelivery, Event, error) {
	ep, err := getWebhookEndpoint(ctx, q, tenantID, endpointID, " FOR UPDATE")
	if err != nil {
		return WebhookDelivery{}, Event{}, err
	}
	d, err := scanWebhookDelivery(q.QueryRowContext(ctx, `SELECT `+webhookDeliveryCols+` FROM webhook_deliveries
		WHERE tenant_id = ? AND endpoint_id = ? AND id = ? FOR UPDATE`, tenantID, endpointID, deliveryID))
	if err != nil {
		return WebhookDelivery{}, Event{}, mapErr(err, fmt.Sprintf("lock webhook delivery %d", deliveryID))
	}
	if !ep.Enabled {
		return WebhookDelivery{}, Event{}, fmt.Errorf("retry webhook delivery %d: endpoint %d is disabled: %w", deliveryID, endpointID, ErrConflict)
	}
	if d.State == WebhookPending {
		return WebhookDelivery{}, Event{}, fmt.Errorf("retry webhook delivery %d: still pending: %w", deliveryID, ErrConflict)
	}
	before := map[string]any{"state": d.State, "round": d.Round}
	t := now()
	d.State, d.Round, d.RoundAttempts, d.NextAttemptAt, d.LeaseUntil, d.UpdatedAt = WebhookPending, d.Round+1, 0, &t, nil, t
	if _, err := q.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, round = ?, round_attempts = 0, next_attempt_at = ?, lease_until = NULL,
		updated_at = ? WHERE id = ?`, d.State, d.Round, t, t, d.ID); err != nil {
		return WebhookDelivery{}, Event{}, fmt.Errorf("retry webhook delivery %d: %w", deliveryID, err)
	}
	ev, err := RecordChange(ctx, q, Change{TenantID: tenantID, ActorID: actorID, RequestID: requestID, Action: "webhook_delivery.retry",
		EntityType: "webhook_delivery", EntityID: d.ID, Before: before, After: map[string]any{"state": d.State, "round": d.Round},
		EventType: EventWebhookRetry, EventPayload: WebhookRetryRequest{DeliveryID: d.ID, EndpointID: endpointID, Round: d.Round}})
	return d, ev, err
}

// ClaimWebhookDelivery leases a pending delivery of the given round to the
// caller until until, unless another worker holds an unexpired lease. It
// reports whether the caller got it.
func ClaimWebhookDelivery(ctx context.Context, q Querier, id int64, round int, until time.Time) (bool, error) {
	t := now()
	res, err := q.ExecContext(ctx, `UPDATE webhook_deliveries SET lease_until = ?, updated_at = ?
		WHERE id = ? AND round = ? AND state = ? AND (lease_until IS NULL OR lease_until < ?)`,
		until.UTC().Truncate(time.Microsecond), t, id, round, WebhookPending, t)
	if err != nil {
		return false, fmt.Errorf("claim webhook delivery %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim webhook delivery %d: %w", id, err)
	}
	return n == 1, nil
}

// ReleaseWebhookDelivery drops the caller's lease without recording an attempt.
func ReleaseWebhookDelivery(ctx context.Context, q Querier, id int64, round int) error {
	if _, err := q.ExecContext(ctx, `UPDATE webhook_deliveries SET lease_until = NULL WHERE id = ? AND round = ?`, id, round); err != nil {
		return fmt.Errorf("release webhook delivery %d: %w", id, err)
	}
	return nil
}

// FailWebhookDelivery gives a pending delivery of the given round up
// without an attempt (its endpoint is disabled, its event is gone).
func FailWebhookDelivery(ctx context.Context, q Querier, id int64, round int, reason string) error {
	t := now()
	_, err := q.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, last_error = ?, next_attempt_at = NULL, lease_until = NULL, updated_at = ?
		WHERE id = ? AND round = ? AND state = ?`, WebhookFailed, cutUTF8(reason, 1000), t, id, round, WebhookPending)
	if err != nil {
		return fmt.Errorf("fail webhook delivery %d: %w", id, err)
	}
	return nil
}

// WebhookAttempt is one HTTP exchange (or try at one) of a delivery.
type WebhookAttempt struct {
	ID              int64
	DeliveryID      int64
	Attempt         int // 1-based over all rounds
	Round           int
	StartedAt       time.Time
	Duration        time.Duration
	StatusCode      int // 0: no response
	ResponseExcerpt string
	Error           string
	NextAttemptAt   *time.Time // nil: no further attempt planned
}

// WebhookOutcome is the result of an attempt to record.
type WebhookOutcome struct {
	TenantID   int64
	DeliveryID int64
	EndpointID int64
	Round      int
	Attempt    WebhookAttempt
	// State is the delivery's state after the attempt: succeeded, pending
	// (another attempt at Attempt.NextAttemptAt) or failed.
	State string
	// EndpointHealthy says the endpoint had no failure run when the attempt
	// read it: a success then skips the write that ends one (and that
	// write's lock on the endpoint row, which every delivery to the
	// endpoint would otherwise queue on). A run that another delivery
	// starts meanwhile is ended by the next success that reads it.
	EndpointHealthy bool
}

// RecordWebhookAttempt logs an attempt, moves its delivery to the outcome's
// state and releases the lease, and keeps the endpoint's failure run: a
// success ends it, a failure starts it if none is running. It returns the
// start of the endpoint's failure run after the attempt (nil: healthy) and
// the attempt's number.
func RecordWebhookAttempt(ctx context.Context, q Querier, o WebhookOutcome) (failingSince *time.Time, attempt int, err error) {
	a := o.Attempt
	started := a.StartedAt.UTC().Truncate(time.Microsecond)
	ms := a.Duration.Milliseconds()
	if ms < 0 {
		ms = 0
	}
	t := now()
	var delivered any
	if o.State == WebhookSucceeded {
		delivered = t
	}
	// The UPDATE numbers the attempt (LAST_INSERT_ID(expr) hands the new
	// count back) and holds the delivery's row lock for the rest of the
	// transaction: no SELECT … FOR UPDATE round trip first.
	res, err := q.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, attempts = LAST_INSERT_ID(attempts + 1), round_attempts = round_attempts + 1,
		last_status = ?, last_error = ?, next_attempt_at = ?, lease_until = NULL, delivered_at = COALESCE(?, delivered_at), updated_at = ?
		WHERE id = ?`, o.State, a.StatusCode, cutUTF8(a.Error, 1000), sqlTime(a.NextAttemptAt), delivered, t, o.DeliveryID)
	if err != nil {
		return nil, 0, fmt.Errorf("update webhook delivery %d: %w", o.DeliveryID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, 0, fmt.Errorf("update webhook delivery %d: %w", o.DeliveryID, err)
	} else if n != 1 {
		return nil, 0, mapErr(sql.ErrNoRows, fmt.Sprintf("update webhook delivery %d", o.DeliveryID))
	}
	n, err := res.LastInsertId()
	if err != nil {
		return nil, 0, fmt.Errorf("number the attempt of webhook delivery %d: %w", o.DeliveryID, err)
	}
	a.Attempt = int(n)
	if _, err := q.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, round, started_at, duration_ms, status_code, response_excerpt, error, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, o.DeliveryID, a.Attempt, o.Round, started, ms, a.StatusCode, a.ResponseExcerpt,
		cutUTF8(a.Error, 1000), sqlTime(a.NextAttemptAt)); err != nil {
		return nil, 0, fmt.Errorf("insert webhook attempt of delivery %d: %w", o.DeliveryID, err)
	}
	if o.State == WebhookSucceeded {
		if o.EndpointHealthy {
			return nil, a.Attempt, nil // no failure run to end
		}
		if _, err := q.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`, o.EndpointID); err != nil {
			return nil, 0, fmt.Errorf("update webhook endpoint %d health: %w", o.EndpointID, err)
		}
		return nil, a.Attempt, nil // healthy now: nothing to read back
	}
	if _, err := q.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL`, started, o.EndpointID); err != nil {
		return nil, 0, fmt.Errorf("update webhook endpoint %d health: %w", o.EndpointID, err)
	}
	var since sql.NullTime
	if err := q.QueryRowContext(ctx, `SELECT failing_since FROM webhook_endpoints WHERE id = ?`, o.EndpointID).Scan(&since); err != nil {
		return nil, 0, mapErr(err, fmt.Sprintf("read webhook endpoint %d health", o.EndpointID))
	}
	return optTime(since), a.Attempt, nil
}

// ListWebhookAttempts returns the attempts of the given deliveries, oldest first.
func ListWebhookAttempts(ctx context.Context, q Querier, deliveryIDs []int64) (map[int64][]WebhookAttempt, error) {
	out := map[int64][]WebhookAttempt{}
	if len(deliveryIDs) == 0 {
		return out, nil
	}
	args := appendIDs(nil, deliveryIDs)
	rows, err := q.QueryContext(ctx, `SELECT id, delivery_id, attempt, round, started_at, duration_ms, status_code, COALESCE(response_excerpt, ''), error, next_attempt_at
		FROM webhook_attempts WHERE delivery_id IN (`+placeholders(len(deliveryIDs))+`) ORDER BY delivery_id, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a WebhookAttempt
		var ms int64
		var next sql.NullTime
		if err := rows.Scan(&a.ID, &a.DeliveryID, &a.Attempt, &a.Round, &a.StartedAt, &ms, &a.StatusCode, &a.ResponseExcerpt, &a.Error, &next); err != nil {
			return nil, fmt.Errorf("scan webhook attempt: %w", err)
		}
		a.Duration = time.Duration(ms) * time.Millisecond
		a.NextAttemptAt = optTime(next)
		out[a.DeliveryID] = append(out[a.DeliveryID], a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhook attempts: %w", err)
	}
	return out, nil
}

// DecodeWebhookTestRequest reads an EventWebhookTest payload.
func DecodeWebhookTestRequest(ev Event) (WebhookTestRequest, error) {
	var r WebhookTestRequest
	if err := json.Unmarshal(ev.Payload, &r); err != nil {
		return r, fmt.Errorf("decode %s payload of event %d: %w", ev.Type, ev.ID, err)
	}
	return r, nil
}

// DecodeWebhookRetryRequest reads an EventWebhookRetry payload.
func DecodeWebhookRetryRequest(ev Event) (WebhookRetryRequest, error) {
	var r WebhookRetryRequest
	if err := json.Unmarshal(ev.Payload, &r); err != nil {
		return r, fmt.Errorf("decode %s payload of event %d: %w", ev.Type, ev.ID, err)
	}
	return r, nil
}

// cutUTF8 cuts s to at most n bytes on a rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}

// WebhookEndpointTenant returns the tenant of an endpoint (ops commands
// address endpoints by id alone).
func WebhookEndpointTenant(ctx context.Context, q Querier, id int64) (int64, error) {
	var tenantID int64
	err := q.QueryRowContext(ctx, `SELECT tenant_id FROM webhook_endpoints WHERE id = ?`, id).Scan(&tenantID)
	return tenantID, mapErr(err, fmt.Sprintf("find webhook endpoint %d", id))
}

// CountWebhookEndpoints counts endpoints by state: "enabled" and "disabled"
// are always present (metrics want the zero too).
func CountWebhookEndpoints(ctx context.Context, q Querier) (map[string]int, error) {
	out := map[string]int{"enabled": 0, "disabled": 0}
	rows, err := q.QueryContext(ctx, `SELECT enabled, COUNT(*) FROM webhook_endpoints GROUP BY enabled`)
	if err != nil {
		return nil, fmt.Errorf("count webhook endpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var enabled bool
		var n int
		if err := rows.Scan(&enabled, &n); err != nil {
			return nil, fmt.Errorf("count webhook endpoints: %w", err)
		}
		if enabled {
			out["enabled"] = n
		} else {
			out["disabled"] = n
		}
	}
	return out, rows.Err()
}
