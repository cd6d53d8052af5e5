// Package metrics declares iacc's Prometheus metrics: their names, help
// texts and labels are the contract with the Grafana dashboards and the alert
// rules in dashboards/. One [Set] is built per process on a registry and
// handed to the api, worker and scheduler packages, which update it.
//
// Labels never carry tenant data: routes are templates (/api/purchase-orders/:id),
// task types and queues are fixed names, outcomes are small enums.
//
// It imports the Prometheus client and nothing of iacc's.
package metrics
