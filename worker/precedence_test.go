package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/precedence"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker"
)

// While the API of the same process is busy, a started worker picks a task
// up but holds it before its handler; the handler runs once the API is no
// longer busy.
func TestTasksWaitWhileTheAPIIsBusy(t *testing.T) {
	t.Parallel()
	gate := precedence.New(precedence.Config{Budget: time.Minute, Busy: 1})
	b := setup(t, func(d *worker.Deps) { d.Precedence = gate })
	w := b.w
	mux, ok := w.Handler().(*asynq.ServeMux)
	if !ok {
		t.Fatalf("worker handler is %T, want *asynq.ServeMux", w.Handler())
	}
	ran := make(chan struct{}, 1)
	mux.HandleFunc("test:hold", func(context.Context, *asynq.Task) error {
		ran <- struct{}{}
		return nil
	})
	gate.Enter() // Busy 1: one request in flight
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Enqueue(asynq.NewTask("test:hold", nil), asynq.Queue(tasks.QueueCritical)); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for gate.Stats().Held != 1 {
		select {
		case <-ran:
			t.Fatal("the task ran while the API was busy")
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the task was not picked up and held: %+v", gate.Stats())
		}
	}
	select {
	case <-ran:
		t.Fatal("the task ran while the API was busy")
	default:
	}
	gate.Leave()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatalf("the task did not run once the API was idle: %+v", gate.Stats())
	}
	if s := gate.Stats(); s.Held != 0 || s.HeldTime <= 0 {
		t.Errorf("gate after the task: %+v", s)
	}
}

// Backlog counts the tasks ready to run in every queue of iacc, not the
// scheduled ones.
func TestBacklogCountsPendingTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	backlog := worker.Backlog(b.rdb.Client)
	ctx := context.Background()
	n, err := backlog(ctx)
	if err != nil || n != 0 {
		t.Fatalf("empty queues: backlog %d, %v", n, err)
	}
	for _, q := range []string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueDefault, tasks.QueueLow} {
		if _, err := b.client.Enqueue(asynq.NewTask("test:backlog", nil), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.client.Enqueue(asynq.NewTask("test:backlog", nil), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := backlog(ctx); err != nil || n != 4 {
		t.Fatalf("backlog %d, %v; want the 4 pending tasks", n, err)
	}
}
