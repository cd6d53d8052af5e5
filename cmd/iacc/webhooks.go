package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/iacc/iacc/store"
)

func (c *cli) webhooksCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Short: "Enable or disable a webhook endpoint, reseal the signing secrets (ops)"}
	set := func(use, short string, enabled bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ENDPOINT_ID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || id <= 0 {
					return fmt.Errorf("ENDPOINT_ID must be a positive number, got %q", args[0])
				}
				db, _, err := c.openDB(cmd.Context())
				if err != nil {
					return err
				}
				defer db.Close()
				ctx := cmd.Context()
				tenantID, err := store.WebhookEndpointTenant(ctx, db, id)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no webhook endpoint %d", id)
				}
				if err != nil {
					return err
				}
				e, err := store.UpdateWebhookEndpoint(ctx, db, tenantID, id, store.WebhookEndpointPatch{Enabled: &enabled}, 0, "cli")
				if err != nil {
					return err
				}
				fmt.Fprintf(c.out, "webhook endpoint %d (tenant %d, %s): enabled=%t\n", e.ID, tenantID, e.URL, e.Enabled)
				if enabled {
					fmt.Fprintln(c.out, "failed deliveries are not resent by enabling; retry them with POST /api/webhooks/ID/deliveries/DELIVERY_ID/retry")
				}
				return nil
			},
		}
	}
	reseal := &cobra.Command{
		Use:   "reseal",
		Short: "Seal every signing secret with the first key of IACC_SECRET_KEYS (plaintext ones and those under older keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, cfg, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			n, err := store.ResealWebhookSecrets(cmd.Context(), db, 500)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "resealed the secrets of %d webhook endpoint(s) with key %q\n", n, cfg.SecretKeys.Current())
			return nil
		},
	}
	cmd.AddCommand(
		set("disable", "Stop deliveries to an endpoint (recorded as a manual disable)", false),
		set("enable", "Resume deliveries to an endpoint and clear its failing state", true),
		reseal,
	)
	return cmd
}
