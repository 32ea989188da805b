package openai

// ErrorBody is OpenAI's error envelope:
// {"error":{"message":…,"type":…,"param":…,"code":…}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody; param and code are null when empty.
type ErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Error types OpenAI uses.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypeRateLimit      = "rate_limit_exceeded"
	TypeServer         = "server_error"
)

// NewError builds an ErrorBody; empty param or code become null.
func NewError(typ, message, param, code string) ErrorBody {
	return ErrorBody{Error: ErrorDetail{Message: message, Type: typ, Param: nullable(param), Code: nullable(code)}}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
