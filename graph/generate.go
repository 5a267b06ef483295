// Package graph holds the GraphQL schema, one file per domain, and the executor that gqlgen
// generates from it.
package graph

//go:generate go tool gqlgen generate
