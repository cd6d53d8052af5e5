// Package scheduler runs the periodic side of iacc: the outbox relay, which
// publishes committed events the API could not publish itself (Redis down,
// process killed between COMMIT and publish), and later the cron table
// (schedule.go) of nightly reports, backups and retention.
//
// Several schedulers may run at once: the relay claims rows with
// FOR UPDATE SKIP LOCKED, and every published task carries a TaskID derived
// from the event, so nothing is published twice.
package scheduler
