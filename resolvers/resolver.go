// Package resolvers implements the GraphQL schema (graph/) over the service
// layer. Bodies in *.resolvers.go stay thin; conversions, the subscription
// bridge to the hub and error presentation live in the other files (gqlgen
// moves unknown code out of generated files on regeneration).
package resolvers

import (
	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
)

// Resolver holds the dependencies of every resolver.
type Resolver struct {
	Svc *service.Service
	Hub *realtime.Hub
	// Store is read by subscribe.go alone (the log head a subscription
	// anchors at, and memberships), until the subscription use cases move
	// into the service (issue 7, item 12).
	Store    store.Store
	Registry *realtime.Registry
	Auth     *auth.Authenticator // verifies refreshConnection's token
}

// closeForbidden is graphql-transport-ws's 4403: an admin's disconnect is
// an authorization decision, so clients must authenticate again.
const closeForbidden = 4403
