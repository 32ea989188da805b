package main

import "strings"

// bytesPerToken is how the fakes count tokens: about four bytes of the
// rendered prompt each, as English text averages with common tokenizers.
const bytesPerToken = 4

// Message is one chat message, as the client sends it and as Ollama's
// /api/chat receives it (text only).
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// renderMessage is a message as a chat template lays it out.
func renderMessage(role, content string) string {
	return "<|" + role + "|>\n" + content + "<|end|>\n"
}

// generationPrompt ends every rendered prompt: the model answers after it.
const generationPrompt = "<|assistant|>\n"

// renderPrompt is what a model evaluates for msgs: each message rendered,
// then the generation prompt.
func renderPrompt(msgs []Message) string {
	var b strings.Builder
	n := len(generationPrompt)
	for _, m := range msgs {
		n += len(m.Role) + len(m.Content) + 12
	}
	b.Grow(n)
	for _, m := range msgs {
		b.WriteString(renderMessage(m.Role, m.Content))
	}
	b.WriteString(generationPrompt)
	return b.String()
}

// afterAnswer is what a slot's KV cache holds once the model answered
// prompt with answer: the next turn's prompt, which renders the answer as
// an assistant message, starts with exactly these bytes.
func afterAnswer(prompt, answer string) string {
	return prompt + answer + "<|end|>\n"
}

// tokens counts the tokens of a rendered text.
func tokens(s string) int { return (len(s) + bytesPerToken - 1) / bytesPerToken }

// commonPrefix is the length in bytes of the longest common prefix of a
// and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	// Skip 64-byte blocks that match (a string comparison is fast), then
	// go byte by byte.
	i := 0
	for i+64 <= n && a[i:i+64] == b[i:i+64] {
		i += 64
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// cachedTokens is how many of prompt's tokens a cache holding cached
// spares: whole tokens of their common prefix, always leaving at least one
// token to evaluate (a fully cached prompt still evaluates its last token,
// as llama.cpp does).
func cachedTokens(cached, prompt string) int {
	c := commonPrefix(cached, prompt) / bytesPerToken
	return min(c, tokens(prompt)-1)
}
