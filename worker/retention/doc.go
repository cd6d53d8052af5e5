// Package retention handles retention:run, the nightly clean-up: audit_log
// entries older than the retention period (90 days) are archived to the blob
// store as gzipped JSON lines and then deleted, batch by batch (an archive
// file is durable before its rows are deleted, and its name is derived from
// the id range, so a re-run rewrites the same file); published outbox events,
// task records, expired idempotency keys and refresh tokens are deleted in
// batches.
package retention
