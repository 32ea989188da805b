package tokenizer

import "github.com/llm-gateway/chatgpt-api-adapter/internal/domain"

// Estimate counts a request's prompt and an answer's text for a usage the
// upstream did not report. Tool definitions and call arguments count as
// their JSON text, as the model reads them.
func (c *Counter) Estimate(model string, req domain.ChatRequest, answer string) domain.Usage {
	msgs := make([]Message, 0, len(req.Messages))
	for _, m := range req.Messages {
		text := m.Content
		for _, tc := range m.ToolCalls {
			text += tc.Name + tc.Arguments
		}
		msgs = append(msgs, Message{Role: m.Role, Content: text, Name: m.Name})
	}
	prompt := c.Prompt(model, msgs)
	for _, t := range req.Tools {
		prompt += c.Text(model, t.Name+" "+t.Description+" "+string(t.Parameters))
	}
	return domain.Usage{PromptTokens: prompt, CompletionTokens: c.Text(model, answer)}
}
