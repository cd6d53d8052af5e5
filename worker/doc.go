// Package worker runs iacc's background work: an asynq server whose mux
// (worker.go's handlers function is the one registration list) routes every
// task type declared in package tasks to its handler.
//
// Each effect lives in its own subpackage with its handler and its external
// client: dispatch/ (event → effect tasks), pdf/ (documents), and later
// email/, webhook/, accounting/, report/, backup/. Subpackages never import
// each other: a handler that wants more work done enqueues the next task.
package worker
