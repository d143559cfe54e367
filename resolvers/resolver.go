// Package resolvers implements the GraphQL schema (graph/) over the service
// layer. Bodies in *.resolvers.go stay thin; conversions, the subscription
// bridge to the hub and error presentation live in the other files (gqlgen
// moves unknown code out of generated files on regeneration).
package resolvers

import (
	"context"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
)

// Resolver holds the dependencies of every resolver.
type Resolver struct {
	Svc      *service.Service
	Subs     *service.Subscriptions // the subscription fields' use cases
	Registry *realtime.Registry
	Auth     *auth.Authenticator // verifies refreshConnection's token
	// ConnsOf lists a user's connections on every instance.
	ConnsOf func(ctx context.Context, userID string) ([]realtime.ConnInfo, error)
}
