//go:build !linux

package bench

import "time"

// freshPageCost is measured on Linux only.
func freshPageCost(int) (time.Duration, error) { return 0, nil }
