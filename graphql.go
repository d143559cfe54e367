package main

import (
	"net/http"

	"github.com/99designs/gqlgen/graphql/handler"
	gqltransport "github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/taskpulse/taskpulse/graph"
	"github.com/taskpulse/taskpulse/internal/gqlguard"
	"github.com/taskpulse/taskpulse/realtime/transport"
	"github.com/taskpulse/taskpulse/resolvers"
	"github.com/taskpulse/taskpulse/service"
)

// graphqlHandler builds /graphql: gqlgen's executor over the schema with
// every transport (WebSocket, SSE, GET and POST) and the cost bounds of
// gqlguard, behind the rule that nothing runs without a token. It sets
// m.ws and m.sse, and returns the query cache for /metrics.
func (m *Main) graphqlHandler() (http.Handler, *gqlguard.QueryCache) {
	cfg := m.cfg
	m.subs = service.NewSubscriptions(m.store, m.hub, service.SubscriptionOptions{Rights: m.authn.Current, ChargeReplay: m.limits.chargeReplay, Logger: m.log})
	res := &resolvers.Resolver{Svc: m.svc, Subs: m.subs, Registry: m.registry, Auth: m.authn, ConnsOf: m.connections}
	es := graph.NewExecutableSchema(graph.Config{Resolvers: res})

	topts := transport.Options{
		Authenticate:   m.limits.authenticate(m.authenticateConn),
		ClientIP:       m.clientIP,
		Admit:          m.limits.admit,
		OnLimit:        m.limits.onTransportLimit,
		Registry:       m.registry,
		CheckOrigin:    m.allowedOrigin,
		InitTimeout:    cfg.WSInitTimeout,
		PingInterval:   cfg.WSPingInterval,
		WriteTimeout:   cfg.WSWriteTimeout,
		ReadLimit:      cfg.WSReadLimit,
		MessageTimeout: cfg.WSMessageTimeout,
		SendQueue:      cfg.WSSendQueue,
		MaxSubsPerConn: cfg.MaxSubsPerConn,
		Shapes:         transport.NewShapes(), // one for both: a query over WebSocket and SSE renders once per event
		Observer:       connObserver{m},
		Logger:         m.log,
	}
	m.ws = transport.NewWebSocket(topts)
	m.sse = transport.NewSSE(topts)

	gql := handler.New(es)
	// Order matters: gqlgen uses the first transport that supports a request.
	gql.AddTransport(m.ws)
	gql.AddTransport(m.sse)
	gql.AddTransport(gqltransport.Options{AllowedMethods: []string{"GET", "POST", "OPTIONS"}})
	gql.AddTransport(gqltransport.GET{})
	gql.AddTransport(gqltransport.POST{})
	cache := gqlguard.Install(gql, gqlguard.Options{
		MaxTokens:        cfg.GraphQLMaxTokens,
		MaxErrors:        cfg.GraphQLMaxErrors,
		ValidationBudget: cfg.GraphQLValidationBudget,
		ComplexityLimit:  cfg.GraphQLComplexityLimit,
		DefaultPageSize:  service.DefaultPageSize,
		MaxResponseBytes: cfg.GraphQLMaxResponseBytes,
		QueryCacheBytes:  cfg.GraphQLQueryCacheBytes,
		Introspection:    cfg.GraphQLIntrospection,
	})
	// The rate limit first: a refused operation costs no read of the user.
	gql.AroundOperations(m.limits.operation)
	gql.AroundOperations(m.currentRights)
	gql.AroundOperations(m.auditOperation)
	gql.AroundOperations(m.presenceActivity) // after the rights check: a refused operation is no activity
	gql.AroundFields(m.auditFields)          // before other field interceptors: it sees their refusals too
	gql.SetErrorPresenter(resolvers.ErrorPresenter(m.log))
	gql.SetRecoverFunc(resolvers.Recover(m.log))
	return m.authn.Required(m.anonymousAllowed, m.limits.guardUser(m.limitRequests(m.withRequestInfo(gql)))), cache
}

// anonymousAllowed says which requests reach /graphql without a token: a
// WebSocket upgrade, which authenticates in connection_init before any
// document is read (m.ws.Supports is exactly what routes a request to the
// WebSocket transport, so nothing else slips through as an "upgrade"), and
// OPTIONS and HEAD, which carry no document. Everything else, SSE included,
// is refused 401 before its body is read.
func (m *Main) anonymousAllowed(r *http.Request) bool {
	return r.Method == http.MethodOptions || r.Method == http.MethodHead || m.ws.Supports(r)
}
