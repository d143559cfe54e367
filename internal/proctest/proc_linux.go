package proctest

import "syscall"

// sysProcAttr makes the kernel kill an instance if the test process dies
// first (a crashed or interrupted go test leaves no server behind).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
