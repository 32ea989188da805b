// Package domain holds the types the service reasons about: chat requests,
// completions, stream chunks, models and the errors that cross layers. It
// imports the standard library only.
package domain

// Message roles accepted from clients.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Finish reasons, as OpenAI names them.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Message is one turn of the conversation. Content holds the text; array
// content from the client has been joined into it.
type Message struct {
	Role       string
	Content    string
	Name       string
	ToolCallID string
}

// Sampling holds the generation parameters a client may set. A nil pointer
// means the client did not send the field and no value may be invented.
type Sampling struct {
	Temperature      *float64
	TopP             *float64
	MaxTokens        *int // max_completion_tokens when given, else max_tokens
	Stop             []string
	Seed             *int64
	PresencePenalty  *float64
	FrequencyPenalty *float64
}

// ChatRequest is a validated chat completion request.
//
// Model is the name the backend must be asked for: the client's name in a
// request from the client, the upstream name once routed. Raw is the
// client's JSON body; backends that speak OpenAI forward it with only the
// model rewritten, so fields this service does not model still arrive.
type ChatRequest struct {
	Model        string
	Messages     []Message
	Stream       bool
	IncludeUsage bool
	Sampling     Sampling
	User         string
	Raw          []byte
}

// Usage counts tokens as the upstream reported them.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// TotalTokens is the sum OpenAI reports as total_tokens.
func (u Usage) TotalTokens() int { return u.PromptTokens + u.CompletionTokens }

// Completion is a whole (non-streamed) answer.
type Completion struct {
	Content      string
	FinishReason string
	Usage        *Usage
}

// Chunk is one piece of a streamed answer. Content is the text delta;
// FinishReason is set on the chunk that ends the answer; Usage, when the
// upstream reports it, arrives on the last chunk.
type Chunk struct {
	Content      string
	FinishReason string
	Usage        *Usage
}

// Route says who served a request: the backend's name and the model name
// that backend was asked for.
type Route struct {
	Backend string
	Model   string
}
