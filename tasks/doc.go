// Package tasks is the contract between the producers of background work
// (the API, the outbox relay, the scheduler, other handlers) and the worker.
//
// A task type is declared once, as a payload struct with a Kind method
// ("domain:verb") and default options (queue, retries, timeout):
//
//	type PDFRender struct{ TenantID, SubjectID int64; ... }
//	func (PDFRender) Kind() string       { return "pdf:render" }
//	func (PDFRender) Options() Options   { return Options{Queue: QueueDefault, MaxRetry: 10, Timeout: time.Minute} }
//
// Producers build tasks with [New]; the worker registers handlers with
// [Handler], which decodes the payload (a payload that does not decode is a
// permanent failure: it is archived, never retried). Payloads hold IDs, never
// content: handlers load the current state from MySQL.
//
// This package imports asynq and nothing of iacc's.
package tasks
