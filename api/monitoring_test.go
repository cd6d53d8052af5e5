package api_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/api"
)

const opsToken = "ops-token-for-the-queue-dashboard-0123456789"

func basicAuth(user, pass string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

// The queue dashboard refuses anonymous callers and non-admin writes, serves
// its UI and API to admins, and lists a task enqueued by the test.
func TestMonitoringDashboard(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOptions) { o.cfg = func(c *api.Config) { c.DashboardToken = opsToken } })
	task := asynq.NewTask("pdf:render", []byte(`{"tenant_id":1,"doc_kind":"purchase_order","subject_id":42,"version":1,"secret":"hush"}`))
	if _, err := asynq.NewClientFromRedisClient(b.rdb).EnqueueContext(context.Background(), task, asynq.Queue("default"), asynq.TaskID("dash-test")); err != nil {
		t.Fatal(err)
	}

	// Anonymous: 401 with a Basic challenge, so a browser prompts.
	res := b.send(t, request{Method: "GET", Path: "/monitoring"})
	if res.Status != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("anonymous = %d %q", res.Status, res.Header.Get("WWW-Authenticate"))
	}
	if res := b.send(t, request{Method: "GET", Path: "/monitoring-readonly/api/queues"}); res.Status != 401 {
		t.Errorf("anonymous read-only API = %d", res.Status)
	}

	// Admin with a bearer token: UI and API, and the task is listed with its
	// payload readable and its secret redacted.
	res = b.send(t, request{Method: "GET", Path: "/monitoring", Token: b.A.AdminToken})
	if res.Status != 200 || !strings.Contains(string(res.Body), "<html") {
		t.Fatalf("admin UI = %d %.200s", res.Status, res.Body)
	}
	res = b.send(t, request{Method: "GET", Path: "/monitoring/api/queues/default/pending_tasks", Token: b.A.AdminToken})
	if res.Status != 200 || !strings.Contains(string(res.Body), "dash-test") {
		t.Fatalf("admin pending tasks = %d %s", res.Status, res.Body)
	}
	if strings.Contains(string(res.Body), "hush") || !strings.Contains(string(res.Body), "redacted") {
		t.Errorf("payload not redacted: %s", res.Body)
	}

	// Admin with Basic auth (what a browser sends).
	res = b.send(t, request{Method: "GET", Path: "/monitoring/api/queues", Header: basicAuth(b.A.Admin.Email, testPassword)})
	if res.Status != 200 {
		t.Errorf("admin via Basic = %d %s", res.Status, res.Body)
	}
	if res := b.send(t, request{Method: "GET", Path: "/monitoring/api/queues", Header: basicAuth(b.A.Admin.Email, "wrong-password")}); res.Status != 401 {
		t.Errorf("wrong Basic password = %d", res.Status)
	}

	// A viewer is sent to the read-only mount, may read there, may not write.
	res = b.send(t, request{Method: "GET", Path: "/monitoring", Token: b.A.ViewerToken})
	if res.Status != 302 || res.Header.Get("Location") != "/monitoring-readonly" {
		t.Errorf("viewer on the read-write mount = %d %q", res.Status, res.Header.Get("Location"))
	}
	if res := b.send(t, request{Method: "GET", Path: "/monitoring-readonly/api/queues/default/pending_tasks", Token: b.A.ViewerToken}); res.Status != 200 || !strings.Contains(string(res.Body), "dash-test") {
		t.Errorf("viewer read-only listing = %d %s", res.Status, res.Body)
	}
	for _, w := range []request{
		{Method: "DELETE", Path: "/monitoring/api/queues/default/pending_tasks/dash-test", Token: b.A.ViewerToken},
		{Method: "DELETE", Path: "/monitoring-readonly/api/queues/default/pending_tasks/dash-test", Token: b.A.ViewerToken},
		{Method: "POST", Path: "/monitoring-readonly/api/queues/default:pause", Header: map[string]string{"Authorization": "Bearer " + opsToken}},
		{Method: "DELETE", Path: "/monitoring/api/queues/default/pending_tasks/dash-test", Header: map[string]string{"Authorization": "Bearer " + opsToken}},
	} {
		if res := b.send(t, w); res.Status < 400 {
			t.Errorf("%s %s by a read-only caller = %d", w.Method, w.Path, res.Status)
		}
	}
	// The vendor role sees no queues at all.
	if res := b.send(t, request{Method: "GET", Path: "/monitoring-readonly/api/queues", Token: b.A.VendorToken}); res.Status != 403 {
		t.Errorf("vendor = %d", res.Status)
	}
	// The ops token reads.
	if res := b.send(t, request{Method: "GET", Path: "/monitoring-readonly/api/queues", Header: basicAuth("ops", opsToken)}); res.Status != 200 {
		t.Errorf("ops token via Basic = %d", res.Status)
	}
	// The task survived every refused write; an admin may delete it.
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	if _, err := insp.GetTaskInfo("default", "dash-test"); err != nil {
		t.Fatalf("task gone after refused writes: %v", err)
	}
	if res := b.send(t, request{Method: "DELETE", Path: "/monitoring/api/queues/default/pending_tasks/dash-test", Token: b.A.AdminToken}); res.Status >= 300 {
		t.Fatalf("admin delete = %d %s", res.Status, res.Body)
	}
	if _, err := insp.GetTaskInfo("default", "dash-test"); err == nil {
		t.Error("admin delete left the task")
	}
}
