package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// dumpOnUSR1 writes a heap profile (after a GC) and the runtime's memory
// figures to path and path+".txt" each time the process gets SIGUSR1.
func dumpOnUSR1(path string) {
	if path == "" {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		for range ch {
			runtime.GC()
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			txt := fmt.Sprintf("goroutines %d\nHeapInuse %d KiB\nHeapAlloc %d KiB\nStackInuse %d KiB\nSys %d KiB\n",
				runtime.NumGoroutine(), m.HeapInuse>>10, m.HeapAlloc>>10, m.StackInuse>>10, m.Sys>>10)
			os.WriteFile(path+".txt", []byte(txt), 0o644)
		}
	}()
}
