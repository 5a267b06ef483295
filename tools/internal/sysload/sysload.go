// Package sysload tells the benchmark tools how busy the machine is, so that every figure
// they print can be read beside the load it was measured under.
package sysload

import (
	"os"
	"strings"
)

// Average returns the machine's load averages over 1, 5 and 15 minutes (Linux), or
// "unknown".
func Average() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
