package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Tenant is one customer organisation; every business row belongs to one.
type Tenant struct {
	ID        int64
	Name      string
	Settings  TenantSettings
	CreatedAt time.Time
}

// TenantSettings are per-tenant preferences stored as JSON.
type TenantSettings struct {
	AccountingEmails []string `json:"accounting_emails,omitempty"`
	ManagementEmails []string `json:"management_emails,omitempty"`
}

// CreateTenant inserts a tenant; a taken name is ErrConflict.
func CreateTenant(ctx context.Context, q Querier, name string, settings TenantSettings) (Tenant, error) {
	raw, err := json.Marshal(settings)
	if err != nil {
		return Tenant{}, fmt.Errorf("encode tenant settings: %w", err)
	}
	t := Tenant{Name: name, Settings: settings, CreatedAt: now()}
	res, err := q.ExecContext(ctx, `INSERT INTO tenants (name, settings, created_at) VALUES (?, ?, ?)`, name, raw, t.CreatedAt)
	if err != nil {
		return Tenant{}, mapErr(err, "insert tenant")
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return Tenant{}, fmt.Errorf("insert tenant: %w", err)
	}
	return t, nil
}

const tenantCols = `id, name, settings, created_at`

func scanTenant(row interface{ Scan(...any) error }) (Tenant, error) {
	var t Tenant
	var raw sql.NullString
	if err := row.Scan(&t.ID, &t.Name, &raw, &t.CreatedAt); err != nil {
		return Tenant{}, err
	}
	if err := decodeTenantSettings(raw, &t.Settings); err != nil {
		return Tenant{}, err
	}
	return t, nil
}

// decodeTenantSettings decodes the settings column (NULL or empty: none).
func decodeTenantSettings(raw sql.NullString, s *TenantSettings) error {
	if !raw.Valid || raw.String == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(raw.String), s); err != nil {
		return fmt.Errorf("decode tenant settings: %w", err)
	}
	return nil
}

// GetTenant loads a tenant by id.
func GetTenant(ctx context.Context, q Querier, id int64) (Tenant, error) {
	t, err := scanTenant(q.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id))
	return t, mapErr(err, fmt.Sprintf("get tenant %d", id))
}

// GetTenantByName loads a tenant by its unique name.
func GetTenantByName(ctx context.Context, q Querier, name string) (Tenant, error) {
	t, err := scanTenant(q.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM tenants WHERE name = ?`, name))
	return t, mapErr(err, fmt.Sprintf("get tenant %q", name))
}
