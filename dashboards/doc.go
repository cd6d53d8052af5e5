// Package dashboards is where operators' views of iacc live: the asynq
// queue dashboard (asynqmon) mounted behind iacc's auth, and, as files next
// to this package, the Grafana dashboards (grafana/*.json) and Prometheus
// alert rules (prometheus/*.yml). It holds no code yet.
package dashboards
