package model

// Address is a postal address: a checkout's input, an order's shipping address.
type Address struct {
	Name       string  `json:"name"`
	Line1      string  `json:"line1"`
	Line2      *string `json:"line2,omitempty"`
	City       string  `json:"city"`
	Region     *string `json:"region,omitempty"`
	PostalCode string  `json:"postalCode"`
	Country    string  `json:"country"`
}
