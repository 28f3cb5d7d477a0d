package bind

import (
	"os"
	"runtime"
)

// minProcs is the GOMAXPROCS the engine runs with at least. Python threads
// call into Go and then block in recv on their server socket; each such call
// needs a P, and with the default (the number of CPUs, 2 on small machines)
// threads queue for a P held by a thread that is only waiting for the
// network. Measured from Python, 4 threads sharing one client: 45-65 us per
// get at 2, about 30 us at 8. The work itself is syscalls, not CPU.
const minProcs = 16

func init() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
}
