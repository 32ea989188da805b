//go:build !linux

package redistest

import "syscall"

func serverProcAttr() *syscall.SysProcAttr { return nil }
