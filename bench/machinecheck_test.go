package bench

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMachineCheckMeasuresEachReading(t *testing.T) {
	c, err := machineCheck(context.Background(), "intake", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if c.OneCoreMB <= 0 || c.AllMB <= 0 || c.Cores <= 0 || c.CPUs < 1 || c.LoopbackUS <= 0 || c.MemCopyMB <= 0 || c.Before != "intake" {
		t.Errorf("check = %+v; want both rates, the cores' worth, the CPU count, the round trip, the copy rate and the scenario", c)
	}
	if runtime.GOOS == "linux" && c.PageFaultUS <= 0 {
		t.Errorf("check = %+v; want the cost of a page fault", c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := machineCheck(ctx, "intake", time.Minute); err == nil {
		t.Error("a cancelled check returned no error")
	}
}

func TestMachineCheckSummaryWarnsWhenTheHostIsShortOfCores(t *testing.T) {
	checks := []MachineCheck{
		{Before: "intake", OneCoreMB: 500, Cores: 1.95, CPUs: 2, LoopbackUS: 18.5, MemCopyMB: 9000, PageFaultUS: 2.5},
		{Before: "reads", OneCoreMB: 320, Cores: 1.02, CPUs: 2, LoopbackUS: 31, MemCopyMB: 4000, PageFaultUS: 30.25},
		{Before: "pdf", OneCoreMB: 480, Cores: 1.60, CPUs: 2, LoopbackUS: 17.25, MemCopyMB: 12000, PageFaultUS: 3},
	}
	line, warning := machineCheckSummary(checks)
	for _, want := range []string{"one core 320–500 MB/s", "on 2 goroutines 1.02–1.95 cores' worth", "round trip 17.2–31.0 µs", "memory copy 4000–12000 MB/s", "page fault 2.5–30.2 µs"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if !strings.Contains(warning, "before reads (1.02)") || strings.Contains(warning, "intake") || strings.Contains(warning, "pdf") {
		t.Errorf("warning %q: want reads alone (1.02 < 0.75 × 2; 1.60 is not)", warning)
	}
	if _, warning := machineCheckSummary(checks[:1]); warning != "" {
		t.Errorf("warning %q for a host that gave 1.95 of 2 cores", warning)
	}
	if line, warning := machineCheckSummary(nil); line != "" || warning != "" {
		t.Errorf("no checks gave %q, %q", line, warning)
	}
}
