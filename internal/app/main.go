package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Version is set at build time with -ldflags "-X …/internal/app.Version=…".
var Version = "dev"

// Main runs the command line: flags, configuration, then the service until
// SIGTERM or SIGINT. It returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chatgpt-api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path to the YAML configuration (default: built-in defaults)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	usage := func() {
		fmt.Fprintf(fs.Output(), "Usage: chatgpt-api [--config PATH] [--version]\n\n"+
			"Serves OpenAI's Chat Completions API (http://HOST:PORT/v1) over an LLM gateway\n"+
			"and Ollama hosts. Environment variables override the file: CHATGPT_API_PORT,\n"+
			"GATEWAY_URL, GATEWAY_API_KEY, OLLAMA_URL, AGENT_ID, LOG_LEVEL, UPSTREAM_TIMEOUT,\n"+
			"DRAIN_TIMEOUT, CORS_ALLOWED_ORIGINS.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	// Parse prints usage itself on -h; help asked for goes to stdout, once.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			usage()
			return 0
		}
		usage()
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "chatgpt-api %s\n", Version)
		return 0
	}
	cfg, err := Load(*configPath, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fxApp := New(cfg)
	if err := fxApp.Err(); err != nil {
		fmt.Fprintln(stderr, "chatgpt-api:", err)
		return 1
	}
	startCtx, cancel := context.WithTimeout(context.Background(), fxApp.StartTimeout())
	defer cancel()
	if err := fxApp.Start(startCtx); err != nil {
		fmt.Fprintln(stderr, "chatgpt-api: start:", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	signal.Stop(sig)
	stopCtx, cancelStop := context.WithTimeout(context.Background(),
		time.Duration(cfg.Server.ShutdownDelay)+time.Duration(cfg.Server.DrainTimeout)+10*time.Second)
	defer cancelStop()
	if err := fxApp.Stop(stopCtx); err != nil {
		fmt.Fprintln(stderr, "chatgpt-api: stop:", err)
		return 1
	}
	return 0
}
