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
	Images     []*Image
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
// request from the client, the upstream name once routed. Passthrough is
// the client's request as the inbound adapter received it, opaque to the
// domain: backends that forward requests (an OpenAI-compatible gateway) or
// read settings of their own from it (Ollama's options) know its type; the
// domain only carries it.
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
	// Session names the conversation when the client did (a session
	// header, prompt_cache_key): its turns go to the same host of a pool.
	// Without it the conversation is known by its leading messages.
	Session     string
	Passthrough any
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
// Logprobs are the content tokens' log probabilities, when asked for and
// reported.
type Choice struct {
	Index        int
	Content      *string
	Refusal      *string
	Reasoning    string
	ToolCalls    []ToolCall
	FinishReason string
	Logprobs     []TokenLogprob
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
	Logprobs     []TokenLogprob
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

// Route says who served a request: the backend's name, the host of its
// pool (empty for a backend of one host built without a name), the model
// name that backend was asked for, and whether the conversation stayed
// with its host (pool.AffinityHit, …; empty when not applicable).
type Route struct {
	Backend  string
	Host     string
	Model    string
	Affinity string
}

// TokenLogprob is the log probability of one generated token, with the most
// likely alternatives at its position when they were asked for. Bytes is the
// token's UTF-8 bytes (a token may hold part of a character).
type TokenLogprob struct {
	Token   string
	Logprob float64
	Bytes   []byte
	Top     []TopLogprob
}

// TopLogprob is one alternative at a token's position.
type TopLogprob struct {
	Token   string
	Logprob float64
	Bytes   []byte
}
