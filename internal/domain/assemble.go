package domain

// Assembler builds a whole completion from the chunks of a stream: a
// buffered answer is asked of the backend as a stream and assembled here,
// so its time limits bound the wait for the first token and the gaps
// between tokens, never the length of the answer.
type Assembler struct {
	choices []*assembling
	usage   *Usage
}

type assembling struct {
	content, refusal, reasoning []byte
	hasContent, hasRefusal      bool
	calls                       []ToolCall
	finish                      string
	logprobs                    []TokenLogprob
}

// Add takes the next chunk of the stream.
func (a *Assembler) Add(c Chunk) {
	if c.Usage != nil {
		u := *c.Usage
		a.usage = &u
	}
	if c.Empty() {
		return
	}
	i := max(c.Index, 0)
	for len(a.choices) <= i {
		a.choices = append(a.choices, &assembling{})
	}
	ch := a.choices[i]
	if c.Content != "" {
		ch.content, ch.hasContent = append(ch.content, c.Content...), true
	}
	if c.Refusal != "" {
		ch.refusal, ch.hasRefusal = append(ch.refusal, c.Refusal...), true
	}
	ch.reasoning = append(ch.reasoning, c.Reasoning...)
	ch.logprobs = append(ch.logprobs, c.Logprobs...)
	for _, d := range c.ToolCalls {
		for len(ch.calls) <= d.Index {
			ch.calls = append(ch.calls, ToolCall{})
		}
		tc := &ch.calls[d.Index]
		if d.ID != "" {
			tc.ID = d.ID
		}
		if d.Name != "" {
			tc.Name = d.Name
		}
		tc.Arguments += d.Arguments
	}
	if c.FinishReason != "" {
		ch.finish = c.FinishReason
	}
}

// Completion returns what was assembled: one choice per index seen (at
// least one), content nil only beside tool calls.
func (a *Assembler) Completion() Completion {
	if len(a.choices) == 0 {
		a.choices = append(a.choices, &assembling{})
	}
	out := Completion{Choices: make([]Choice, len(a.choices)), Usage: a.usage}
	for i, ch := range a.choices {
		c := Choice{Index: i, Reasoning: string(ch.reasoning), ToolCalls: ch.calls, FinishReason: ch.finish, Logprobs: ch.logprobs}
		if ch.hasContent || len(ch.calls) == 0 {
			s := string(ch.content)
			c.Content = &s
		}
		if ch.hasRefusal {
			s := string(ch.refusal)
			c.Refusal = &s
		}
		if c.FinishReason == "" {
			c.FinishReason = FinishStop
			if len(ch.calls) > 0 {
				c.FinishReason = FinishToolCalls
			}
		}
		out.Choices[i] = c
	}
	return out
}
