package tasks_test

import (
	"testing"
	"time"

	"github.com/iacc/iacc/tasks"
)

func TestAccountingSyncContract(t *testing.T) {
	t.Parallel()
	p := tasks.AccountingSync{TenantID: 3, DocType: "purchase_order", DocID: 42, Version: 2, EventID: 99}
	if p.TaskID() != "acct-3-purchase_order-42-v2" {
		t.Errorf("TaskID = %s", p.TaskID())
	}
	other := p
	other.EventID = 100 // a re-dispatch of the same version by another event: same task
	if other.TaskID() != p.TaskID() {
		t.Error("the TaskID depends on the event")
	}
	if o := p.Options(); o.Queue != tasks.QueueLow || o.MaxRetry < 10 || o.Timeout <= 0 || o.Retention <= 0 {
		t.Errorf("options %+v", o)
	}
	prev := time.Duration(0)
	for n := range 30 {
		d := p.RetryDelay(n)
		if d < 4*time.Second || d > 17*time.Minute {
			t.Errorf("retry %d after %v", n, d)
		}
		if n < 7 && d < prev/2 {
			t.Errorf("retry %d after %v, shorter than the previous %v", n, d, prev)
		}
		prev = d
	}
	task, err := tasks.New(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := tasks.Decode[tasks.AccountingSync](task)
	if err != nil || back != p {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}
