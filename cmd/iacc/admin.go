package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/store"
)

// openDB opens MySQL only (admin commands need nothing else). In local mode
// the database is created and migrated first.
func (c *cli) openDB(ctx context.Context) (*store.DB, Config, error) {
	cfg, log, err := c.config()
	if err != nil {
		return nil, cfg, err
	}
	if err := useSecretKeys(&cfg, log); err != nil {
		return nil, cfg, err
	}
	if cfg.Local() {
		if err := store.EnsureDatabase(ctx, cfg.MySQLDSN); err != nil {
			return nil, cfg, fmt.Errorf("IACC_MYSQL_DSN: %w", err)
		}
	}
	db, err := store.Open(cfg.MySQLDSN, store.Options{MaxOpenConns: 4})
	if err != nil {
		return nil, cfg, fmt.Errorf("IACC_MYSQL_DSN: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, cfg, fmt.Errorf("connect to MySQL (IACC_MYSQL_DSN): %w", err)
	}
	if cfg.Local() {
		if _, err := db.Migrate(ctx, log); err != nil {
			db.Close()
			return nil, cfg, err
		}
	}
	return db, cfg, nil
}

func (c *cli) migrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply or inspect database migrations",
		Long:  "Database migrations are embedded in the binary and forward-only. Run `iacc migrate up` before starting a new version in production.",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration (safe to run from several replicas at once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := c.config()
			if err != nil {
				return err
			}
			if cfg.Local() {
				if err := store.EnsureDatabase(cmd.Context(), cfg.MySQLDSN); err != nil {
					return fmt.Errorf("IACC_MYSQL_DSN: %w", err)
				}
			}
			db, err := store.Open(cfg.MySQLDSN, store.Options{MaxOpenConns: 4})
			if err != nil {
				return fmt.Errorf("IACC_MYSQL_DSN: %w", err)
			}
			defer db.Close()
			n, err := db.Migrate(cmd.Context(), log)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "applied %d migration(s); database %s is up to date\n", n, db.Name())
			return nil
		},
	}, &cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := c.config()
			if err != nil {
				return err
			}
			db, err := store.Open(cfg.MySQLDSN, store.Options{MaxOpenConns: 2})
			if err != nil {
				return fmt.Errorf("IACC_MYSQL_DSN: %w", err)
			}
			defer db.Close()
			st, err := db.MigrationStatuses(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tSTATE\tFILE")
			for _, s := range st {
				state := "pending"
				if s.Applied {
					state = "applied"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\n", s.Version, state, s.Name)
			}
			return tw.Flush()
		},
	})
	return cmd
}

func (c *cli) tenantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants"}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.TrimSpace(args[0])
			if name == "" || len(name) > 200 {
				return errors.New("tenant name must be 1 to 200 characters")
			}
			db, _, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			t, err := store.CreateTenant(cmd.Context(), db, name, store.TenantSettings{})
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("a tenant named %q already exists", name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "created tenant %q (id %d)\n", t.Name, t.ID)
			return nil
		},
	})
	return cmd
}

func (c *cli) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users"}
	var tenant, email, password, role string
	var vendorID int64
	create := &cobra.Command{
		Use:   "create --tenant NAME --email E --password P --role admin|accounting|vendor|viewer [--vendor ID]",
		Short: "Create a user of a tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !store.ValidRole(role) {
				return fmt.Errorf("--role must be admin, accounting, vendor or viewer, got %q", role)
			}
			if (role == store.RoleVendor) != (vendorID != 0) {
				return errors.New("--vendor is required for the vendor role and only for it")
			}
			hash, err := api.HashPassword(password)
			if err != nil {
				return fmt.Errorf("--password: %w", err)
			}
			db, _, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			t, err := store.GetTenantByName(cmd.Context(), db, tenant)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no tenant named %q (create it with `iacc tenant create`)", tenant)
			}
			if err != nil {
				return err
			}
			if vendorID != 0 {
				if _, err := store.GetVendor(cmd.Context(), db, t.ID, vendorID); err != nil {
					return fmt.Errorf("--vendor %d: no such vendor in tenant %q", vendorID, tenant)
				}
			}
			u, err := store.CreateUser(cmd.Context(), db, store.User{TenantID: t.ID, Email: strings.ToLower(strings.TrimSpace(email)),
				PasswordHash: hash, Role: role, VendorID: vendorID})
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("a user with email %q already exists", email)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "created %s user %s (id %d) in tenant %q\n", u.Role, u.Email, u.ID, t.Name)
			return nil
		},
	}
	create.Flags().StringVar(&tenant, "tenant", "", "tenant name (required)")
	create.Flags().StringVar(&email, "email", "", "login email (required)")
	create.Flags().StringVar(&password, "password", "", "password, 8 to 72 bytes (required)")
	create.Flags().StringVar(&role, "role", "", "admin, accounting, vendor or viewer (required)")
	create.Flags().Int64Var(&vendorID, "vendor", 0, "vendor id (vendor role only)")
	for _, f := range []string{"tenant", "email", "password", "role"} {
		_ = create.MarkFlagRequired(f)
	}
	cmd.AddCommand(create)
	return cmd
}

const (
	demoTenant = "Demo Company"
	demoEmail  = "admin@demo.iacc.test"
	// demoPassword is the documented local demo login; production seeding
	// requires --password.
	demoPassword = "demo-admin-password"
)

func (c *cli) seedCmd() *cobra.Command {
	var password string
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Create a demo tenant with an admin, vendors and products, and print the login",
		Long: `Create the "Demo Company" tenant with an admin user, three vendors and a few
products. Running it again changes nothing and prints the login again. In local
mode the admin password defaults to "` + demoPassword + `"; elsewhere pass --password.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, cfg, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if password == "" {
				if !cfg.Local() {
					return errors.New("--password is required outside local mode")
				}
				password = demoPassword
			}
			return seed(cmd.Context(), db, c, password)
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "password of the demo admin (default: the local demo password)")
	return cmd
}

func seed(ctx context.Context, db *store.DB, c *cli, password string) error {
	hash, err := api.HashPassword(password)
	if err != nil {
		return fmt.Errorf("--password: %w", err)
	}
	var vendors []store.Vendor
	created := false
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		vendors = nil
		t, err := store.GetTenantByName(ctx, tx, demoTenant)
		if err == nil {
			vs, _, err := store.ListVendors(ctx, tx, t.ID, store.VendorFilter{Page: store.Page{Size: 100}})
			vendors = vs
			return err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		created = true
		t, err = store.CreateTenant(ctx, tx, demoTenant, store.TenantSettings{
			AccountingEmails: []string{"accounting@demo.iacc.test"}, ManagementEmails: []string{"management@demo.iacc.test"}})
		if err != nil {
			return err
		}
		if _, err := store.CreateUser(ctx, tx, store.User{TenantID: t.ID, Email: demoEmail, PasswordHash: hash, Role: store.RoleAdmin}); err != nil {
			return err
		}
		for _, v := range []store.Vendor{
			{Name: "Acme Office Supplies", Email: "orders@acme-supplies.test", Address: "1 Paper Street, Springfield"},
			{Name: "Globex Hardware", Email: "sales@globex.test", Address: "42 Circuit Road, Cypress Creek"},
			{Name: "Café Müller GmbH", Email: "bestellung@cafe-mueller.test", Address: "Kaffeeweg 7, 10115 Berlin"},
		} {
			v.TenantID = t.ID
			nv, err := store.CreateVendor(ctx, tx, v)
			if err != nil {
				return err
			}
			vendors = append(vendors, nv)
		}
		for i, p := range []store.Product{
			{Name: "A4 copy paper, 500 sheets", UnitPrice: decimal.RequireFromString("4.99")},
			{Name: "Ballpoint pens, box of 50", UnitPrice: decimal.RequireFromString("12.50")},
			{Name: "27-inch monitor", UnitPrice: decimal.RequireFromString("219.00")},
			{Name: "Espresso beans, 1 kg", UnitPrice: decimal.RequireFromString("18.90")},
		} {
			p.TenantID, p.SKU, p.Currency = t.ID, fmt.Sprintf("DEMO-%03d", i+1), "EUR"
			if _, err := store.CreateProduct(ctx, tx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed demo data: %w", err)
	}
	if created {
		fmt.Fprintf(c.out, "seeded tenant %q\n", demoTenant)
	} else {
		fmt.Fprintf(c.out, "tenant %q already seeded; nothing changed\n", demoTenant)
	}
	fmt.Fprintf(c.out, "login: email %s  password %s\n", demoEmail, password)
	for _, v := range vendors {
		fmt.Fprintf(c.out, "vendor id %d: %s\n", v.ID, v.Name)
	}
	return nil
}
