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

// Message is one turn of the conversation. Content holds the text (array
// content from the client joined with newlines); Images holds the images of
// image_url parts, as the URLs the client sent (data: URLs or http(s)).
type Message struct {
	Role       string
	Content    string
	Images     []string
	Name       string
	ToolCallID string     // on a tool message: the call it answers
	ToolCalls  []ToolCall // on an assistant message: the calls it made
}

// ToolCall is a function call the model made. Arguments is JSON text, as
// OpenAI sends it.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Tool is a function the model may call. Parameters is its JSON schema.
type Tool struct {
	Name        string
	Description string
	Parameters  []byte
	Strict      *bool
}

// Tool choice modes.
const (
	ToolChoiceAuto     = "auto"
	ToolChoiceNone     = "none"
	ToolChoiceRequired = "required"
	ToolChoiceFunction = "function" // a named function, in ToolChoice.Name
)

// ToolChoice says whether and which tool the model must call. The zero
// value means the client did not say (auto).
type ToolChoice struct {
	Mode string
	Name string
}

// Response formats.
const (
	FormatText       = "text"
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

// ResponseFormat constrains the answer's shape.
type ResponseFormat struct {
	Type   string
	Name   string // json_schema: the schema's name
	Schema []byte // json_schema: the JSON schema
	Strict *bool
}

// OllamaExtras are Ollama-only settings a client may send in the request
// body (the SDKs' extra_body): options, keep_alive and think, kept as JSON.
type OllamaExtras struct {
	Options   []byte
	KeepAlive []byte
	Think     []byte
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
	Model             string
	Messages          []Message
	Stream            bool
	IncludeUsage      bool
	Sampling          Sampling
	User              string
	Tools             []Tool
	ToolChoice        ToolChoice
	ParallelToolCalls *bool
	LegacyFunctions   bool // tools came as the deprecated functions; answer with function_call
	ResponseFormat    *ResponseFormat
	N                 int    // choices wanted; 1 unless the client asked for more
	Logprobs          bool   // token log probabilities wanted
	TopLogprobs       *int   // alternatives per token
	ReasoningEffort   string // low, medium, high, max, none; "" when not sent
	Ollama            OllamaExtras
	Raw               []byte
}

// Usage counts tokens as the upstream reported them.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// TotalTokens is the sum OpenAI reports as total_tokens.
func (u Usage) TotalTokens() int { return u.PromptTokens + u.CompletionTokens }

// Completion is a whole (non-streamed) answer with one or more choices.
type Completion struct {
	Choices []Choice
	Usage   *Usage
}

// Choice is one answer. Content is nil when the model only called tools.
// Logprobs is the upstream's logprobs object as JSON, when it sent one.
type Choice struct {
	Index        int
	Content      *string
	Refusal      *string
	Reasoning    string
	ToolCalls    []ToolCall
	FinishReason string
	Logprobs     []byte
}

// Text returns the choice's content, or "".
func (c Choice) Text() string {
	if c.Content == nil {
		return ""
	}
	return *c.Content
}

// Chunk is one piece of a streamed answer for choice Index. Content and
// Reasoning are text deltas; ToolCalls are call fragments; FinishReason is
// set on the chunk that ends the choice; Usage, when the upstream reports
// it, arrives on the last chunk of the stream.
type Chunk struct {
	Index        int
	Content      string
	Refusal      string
	Reasoning    string
	ToolCalls    []ToolCallDelta
	FinishReason string
	Logprobs     []byte
	Usage        *Usage
}

// Empty reports whether the chunk carries nothing for the client.
func (c *Chunk) Empty() bool {
	return c.Content == "" && c.Refusal == "" && c.Reasoning == "" && len(c.ToolCalls) == 0 &&
		c.FinishReason == "" && len(c.Logprobs) == 0
}

// ToolCallDelta is a fragment of a streamed tool call: the first fragment
// of call Index carries ID and Name, later ones more Arguments text.
type ToolCallDelta struct {
	Index     int
	ID        string
	Name      string
	Arguments string
}

// Route says who served a request: the backend's name and the model name
// that backend was asked for.
type Route struct {
	Backend string
	Model   string
}
