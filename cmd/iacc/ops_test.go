package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// runCLI runs iacc with args against env and returns stdout.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(mapEnv(env), &out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func opsEnv(t *testing.T) (map[string]string, *storetest.Redis) {
	_, dsn := storetest.NewDBWithDSN(t)
	rdb := storetest.NewRedis(t)
	return map[string]string{
		"IACC_ENV": "production", "IACC_MAIL_FROM": "iacc@test.example", "IACC_JWT_SECRET": strings.Repeat("s", 40), "IACC_LOG_LEVEL": "error",
		"IACC_SECRET_KEYS": storetest.SecretKeys,
		"IACC_MYSQL_DSN":   dsn, "IACC_REDIS_URL": rdb.URL,
	}, rdb
}

func TestOpsCommands(t *testing.T) {
	t.Parallel()
	env, rdb := opsEnv(t)
	client := asynq.NewClientFromRedisClient(rdb.Client)
	if _, err := client.Enqueue(asynq.NewTask("pdf:render", []byte(`{}`)), asynq.Queue("default"), asynq.TaskID("t-archived")); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb.Client)
	if err := insp.ArchiveTask("default", "t-archived"); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, env, "queues")
	if err != nil || !strings.Contains(out, "default") || !strings.Contains(out, "ARCHIVED") {
		t.Fatalf("queues: %v\n%s", err, out)
	}
	if out, err := runCLI(t, env, "tasks", "retry", "default", "t-archived"); err != nil || !strings.Contains(out, "retry: task t-archived") {
		t.Fatalf("tasks retry: %v %s", err, out)
	}
	info, err := insp.GetTaskInfo("default", "t-archived")
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("after retry the task is %v (%v), want pending", info, err)
	}
	if _, err := runCLI(t, env, "tasks", "archive", "default", "t-archived"); err != nil {
		t.Fatal(err)
	}
	if info, _ := insp.GetTaskInfo("default", "t-archived"); info == nil || info.State != asynq.TaskStateArchived {
		t.Fatalf("after archive: %+v", info)
	}
	if _, err := runCLI(t, env, "tasks", "delete", "default", "t-archived"); err != nil {
		t.Fatal(err)
	}
	if _, err := insp.GetTaskInfo("default", "t-archived"); err == nil {
		t.Fatal("task still there after delete")
	}
	if _, err := runCLI(t, env, "tasks", "delete", "default", "t-archived"); err == nil || !strings.Contains(err.Error(), "no task t-archived") {
		t.Errorf("deleting a missing task: %v", err)
	}

	out, err = runCLI(t, env, "outbox", "status")
	if err != nil || !strings.Contains(out, "unpublished events:   0") {
		t.Fatalf("outbox status: %v\n%s", err, out)
	}
	out, err = runCLI(t, env, "scheduler", "list")
	if err != nil || !strings.Contains(out, "retention") || !strings.Contains(out, "never") {
		t.Fatalf("scheduler list: %v\n%s", err, out)
	}
}

func TestEveryCommandAnswersHelp(t *testing.T) {
	root := newRootCmd(mapEnv(nil), &bytes.Buffer{}, &bytes.Buffer{})
	var walk func(prefix []string, cmds []*cobra.Command)
	count := 0
	walk = func(prefix []string, cmds []*cobra.Command) {
		for _, c := range cmds {
			args := append(append([]string{}, prefix...), c.Name())
			var out bytes.Buffer
			r := newRootCmd(mapEnv(nil), &out, &out)
			r.SetArgs(append(append([]string{}, args...), "--help"))
			if err := r.Execute(); err != nil || !strings.Contains(out.String(), "Usage:") {
				t.Errorf("iacc %s --help: %v\n%s", strings.Join(args, " "), err, out.String())
			}
			count++
			walk(args, c.Commands())
		}
	}
	walk(nil, root.Commands())
	if count < 15 {
		t.Errorf("only %d commands found", count)
	}
}

// `iacc webhooks reseal` seals a secret stored in plaintext (written before
// sealing existed) with the first key of IACC_SECRET_KEYS, and the endpoint
// signs with the same secret afterwards.
func TestWebhooksResealCommand(t *testing.T) {
	t.Parallel()
	env, _ := opsEnv(t)
	db, err := store.Open(env["IACC_MYSQL_DSN"], store.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "reseal")
	sealed, err := store.CreateWebhookEndpoint(ctx, db, store.WebhookEndpoint{TenantID: ten.ID, URL: "https://a.example/hook", Enabled: true}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := store.CreateWebhookEndpoint(ctx, db, store.WebhookEndpoint{TenantID: ten.ID, URL: "https://b.example/hook", Enabled: true}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE webhook_endpoints SET secret = ? WHERE id = ?`, legacy.Secret, legacy.ID); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, env, "webhooks", "reseal")
	if err != nil || !strings.Contains(out, `resealed the secrets of 1 webhook endpoint(s) with key "test"`) {
		t.Fatalf("webhooks reseal: %v\n%s", err, out)
	}
	var stored string
	if err := db.QueryRowContext(ctx, `SELECT secret FROM webhook_endpoints WHERE id = ?`, legacy.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "sealed:v1:test:") {
		t.Fatalf("after reseal the secret is stored as %q", stored)
	}
	for _, want := range []store.WebhookEndpoint{sealed, legacy} {
		got, err := store.GetWebhookEndpoint(ctx, db, ten.ID, want.ID)
		if err != nil || got.Secret != want.Secret {
			t.Errorf("endpoint %d after reseal: %v, secret changed: %t", want.ID, err, got.Secret != want.Secret)
		}
	}
}
