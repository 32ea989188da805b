package redistest

import "syscall"

// serverProcAttr has the kernel kill redis-server should the test binary
// die without stopping it (a test timeout's panic, a kill).
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
