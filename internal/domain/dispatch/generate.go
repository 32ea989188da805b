package dispatch

//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -destination=mock_backend_test.go -package=dispatch_test -mock_names=ChatBackend=MockChatBackend github.com/llm-gateway/chatgpt-api-adapter/internal/ports ChatBackend
