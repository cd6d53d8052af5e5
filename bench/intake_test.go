package bench

import "testing"

func TestBestClientsIsTheFastestStepWithoutErrors(t *testing.T) {
	steps := []Row{
		{Clients: 1, Throughput: 150},
		{Clients: 8, Throughput: 700},
		{Clients: 32, Throughput: 880},
		{Clients: 64, Throughput: 990, Errors: 3}, // faster, but it dropped requests
	}
	if got := bestClients(steps); got != 32 {
		t.Errorf("bestClients = %d; want 32 (64 failed requests)", got)
	}
	if got := bestClients(steps[:2]); got != 8 {
		t.Errorf("bestClients of 1 and 8 clients = %d; want 8", got)
	}
	if got := bestClients([]Row{{Clients: 8, Errors: 1, Throughput: 10}}); got != 0 {
		t.Errorf("bestClients with no clean step = %d; want 0", got)
	}
}
