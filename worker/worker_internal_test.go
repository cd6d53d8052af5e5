package worker

import (
	"testing"

	"github.com/iacc/iacc/tasks"
)

// Every task type declared in package tasks has an exact registration (the
// asynq mux would otherwise fall back to prefix matching), and nothing is
// registered that the contract does not declare.
func TestEveryDeclaredTaskTypeHasAnExactHandler(t *testing.T) {
	regs := handlers(Config{}, Deps{})
	declared := map[string]bool{}
	for _, p := range tasks.Declared() {
		kind := p.Kind()
		if declared[kind] {
			t.Errorf("task type %s declared twice", kind)
		}
		declared[kind] = true
		if h, ok := regs[kind]; !ok || h == nil {
			t.Errorf("task type %s has no handler registered under its exact name", kind)
		}
		o := p.Options()
		if _, ok := tasks.Queues()[o.Queue]; !ok {
			t.Errorf("task type %s uses unknown queue %q", kind, o.Queue)
		}
		if o.Timeout <= 0 || o.MaxRetry < 0 {
			t.Errorf("task type %s has options %+v", kind, o)
		}
	}
	for name := range regs {
		if !declared[name] {
			t.Errorf("handler registered for %s, which package tasks does not declare", name)
		}
	}
}
