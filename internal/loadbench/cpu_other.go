//go:build !unix

package loadbench

import "time"

// processCPU does not know the process's CPU time on this platform: the CPU columns stay
// empty.
func processCPU() (time.Duration, bool) { return 0, false }
