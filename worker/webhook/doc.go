// Package webhook delivers events to the tenants' webhook endpoints: the
// webhook:deliver task, following the Standard Webhooks specification
// (https://www.standardwebhooks.com).
//
// event:dispatch creates one webhook_deliveries row per event × subscribed
// endpoint and enqueues one task per row. The task's handler:
//
//  1. loads the delivery; one that succeeded (or whose round has passed) is
//     left alone, so a duplicate task sends nothing;
//  2. leases it in MySQL, so two copies of the task (a lease expiry in
//     asynq, a re-publish) never send at once;
//  3. POSTs {"type", "timestamp", "data"} with the headers webhook-id
//     (stable per event × endpoint: retries reuse it), webhook-timestamp
//     (the attempt's time) and webhook-signature ("v1,<base64 HMAC-SHA256 of
//     id.timestamp.body>", and a second signature with the previous secret
//     during a rotation's overlap);
//  4. logs the attempt (status, latency, a 4 KB excerpt of the answer,
//     error) and decides: 2xx is success; 410 disables the endpoint; any
//     other answer (3xx included: redirects are not followed) or error is
//     retried on a jittered schedule of about a day (Retry-After honoured on
//     429 and 503), after which the delivery has failed. An endpoint that
//     has failed without a break for Config.DisableAfter is disabled and
//     the tenant's admins are emailed (an email:send task per admin).
//
// Outbound connections go through [Guard]: at connect time, after DNS (so a
// name that resolves to an internal address is refused even if it resolved
// elsewhere a moment earlier), it refuses loopback, private, link-local,
// CGNAT, cloud metadata and IPv4-mapped addresses and ports other than 80
// and 443; the client ignores proxy variables and follows no redirect.
package webhook
