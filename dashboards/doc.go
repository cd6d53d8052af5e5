// Package dashboards holds what operators look at: the asynq queue
// dashboard (asynqmon) handler, which the API mounts behind iacc's own auth
// and `iacc dashboard` serves on its own port, and, as files next to this
// package, the Grafana dashboards (grafana/*.json) and the Prometheus alert
// rules with their unit tests (prometheus/*.yml).
package dashboards
