package domain

// Input is one prompt of a text completion, or one input of an embedding
// request: text, or the token ids the client already encoded it into
// (Tokens non-nil), as OpenAI's API accepts both.
type Input struct {
	Text   string
	Tokens []int
}

// TextRequest is a validated legacy text completion request
// (/v1/completions): raw prompts continued, or filled in between a
// prompt and a suffix.
//
// Model is the backend's name once routed; Requested stays the name the
// client asked for (token ids were encoded for it). Passthrough is the
// client's request as the inbound adapter received it, opaque here.
type TextRequest struct {
	Model        string
	Requested    string
	Prompts      []Input
	Suffix       string // text after the completion (fill in the middle); "" for none
	Echo         bool   // the prompt is repeated before its completion
	Sampling     Sampling
	N            int  // completions per prompt
	Logprobs     *int // alternatives per token (0-5) when log probabilities are wanted
	Stream       bool
	IncludeUsage bool
	User         string
	Session      string // see ChatRequest.Session
	Passthrough  any
}

// TextChunk is one piece of a streamed text completion for choice Index
// (prompt p, completion k: p*N + k). Logprobs are those of the tokens of
// Text; Usage, when reported, comes on the last chunk.
type TextChunk struct {
	Index        int
	Text         string
	FinishReason string
	Logprobs     []TokenLogprob
	Usage        *Usage
}

// TextCompletion is a whole text completion.
type TextCompletion struct {
	Choices []TextChoice
	Usage   *Usage
}

// TextChoice is one completion.
type TextChoice struct {
	Index        int
	Text         string
	FinishReason string
	Logprobs     []TokenLogprob
}

// TextAssembler builds a whole text completion from the chunks of a
// stream.
type TextAssembler struct {
	choices []TextChoice
	usage   *Usage
}

// Add takes the next chunk.
func (a *TextAssembler) Add(c TextChunk) {
	if c.Usage != nil {
		u := *c.Usage
		a.usage = &u
	}
	i := max(c.Index, 0)
	for len(a.choices) <= i {
		a.choices = append(a.choices, TextChoice{Index: len(a.choices)})
	}
	ch := &a.choices[i]
	ch.Text += c.Text
	ch.Logprobs = append(ch.Logprobs, c.Logprobs...)
	if c.FinishReason != "" {
		ch.FinishReason = c.FinishReason
	}
}

// Completion returns what was assembled, with at least n choices.
func (a *TextAssembler) Completion(n int) TextCompletion {
	for len(a.choices) < max(n, 1) {
		a.choices = append(a.choices, TextChoice{Index: len(a.choices)})
	}
	for i := range a.choices {
		if a.choices[i].FinishReason == "" {
			a.choices[i].FinishReason = FinishStop
		}
	}
	return TextCompletion{Choices: a.choices, Usage: a.usage}
}

// EmbedRequest is a validated embeddings request.
type EmbedRequest struct {
	Model      string
	Requested  string
	Inputs     []Input
	Dimensions *int // the size the vectors must have, when the client set one
	// Truncate lets a backend cut an input longer than the model's context
	// instead of refusing it (OpenAI refuses it).
	Truncate    bool
	User        string
	Passthrough any
}

// Embeddings are the vectors of a request's inputs, in input order.
type Embeddings struct {
	Vectors [][]float32
	Usage   *Usage // prompt tokens; nil when the backend did not say
}

// InputError is the failure of one input of a request (an embedding input
// longer than the model's context): Index is its position in the request
// the backend was given. It is the client's to fix; no other backend is
// tried.
type InputError struct {
	Index   int
	Message string
}

func (e *InputError) Error() string { return e.Message }
