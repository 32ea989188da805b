// Command svcprof is the service under runtime/pprof: the same app.Main as
// cmd/chatgpt-api, run in-process, for cmd/bench's -profile mode. It is
// never used for the measured numbers.
//
//	svcprof [-cpuprofile F] [-memprofile F] [-heapprofile F] --config FILE
//
// -cpuprofile covers the whole run; -memprofile writes the allocation
// profile at exit; -heapprofile writes the live heap (after a GC) and the
// runtime's memory figures (F.txt) on each SIGUSR1.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

func main() {
	args := os.Args[1:]
	var cpu, mem, heap string
	for len(args) >= 2 {
		switch args[0] {
		case "-cpuprofile":
			cpu = args[1]
		case "-memprofile":
			mem = args[1]
		case "-heapprofile":
			heap = args[1]
		default:
			goto run
		}
		args = args[2:]
	}
run:
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
	}
	if heap != "" {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1)
		go func() {
			for range ch {
				runtime.GC()
				if f, err := os.Create(heap); err == nil {
					pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				txt := fmt.Sprintf("goroutines %d\nHeapInuse %d KiB\nHeapAlloc %d KiB\nStackInuse %d KiB\nSys %d KiB\n",
					runtime.NumGoroutine(), m.HeapInuse>>10, m.HeapAlloc>>10, m.StackInuse>>10, m.Sys>>10)
				os.WriteFile(heap+".txt", []byte(txt), 0o644)
			}
		}()
	}
	code := app.Main(args, os.Stdout, os.Stderr)
	if cpu != "" {
		pprof.StopCPUProfile()
	}
	if mem != "" {
		if f, err := os.Create(mem); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	os.Exit(code)
}
