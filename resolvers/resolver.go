package resolvers

// Resolver holds the dependencies of every resolver. gqlgen never regenerates this file.
type Resolver struct{}
