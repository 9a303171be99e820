package s3test

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill versitygw when the test process dies
// (a test binary killed on timeout runs no Cleanup), so no server outlives
// its test.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
