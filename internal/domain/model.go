package domain

// Model is one model a backend serves, or an alias this service offers.
type Model struct {
	ID      string
	Created int64 // unix seconds; 0 when the backend does not say
	OwnedBy string
}
