// Command chatgpt-api serves OpenAI's Chat Completions API over an LLM
// gateway and Ollama hosts.
package main

import (
	"os"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
