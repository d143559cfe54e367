// Package gqlguard owns what a GraphQL document may cost the server, from
// the moment its text arrives to the last byte of its response, whoever
// sends it: the parser's token limit, the validation rules (gqlparser's,
// with the quadratic OverlappingFieldsCanBeMerged replaced by a budgeted
// port and every rule's errors capped), a pre-validation bound on how much
// gqlparser's walker would visit, the complexity limit (linear in the
// document, introspection counted), the cache of parsed documents (bounded
// in bytes), and the cap on a response's size and error count.
//
// Install wires all of it into a gqlgen handler.Server; each piece is also
// usable on its own (and tested so).
//
// # Why the costs are bounded rather than cancelled
//
// gqlparser's validation API takes no context (a RuleFunc gets observers
// and an error sink; core.Walk leaves Walker.Context nil), so a rule
// cannot notice that the client went away. Instead, nothing here can run
// long: a document has at most MaxTokens tokens; before gqlparser walks
// it, WalkBound refuses a document whose walk would visit more than
// ValidationBudget nodes (the walk re-enters a fragment for every
// operation and every fragment that reaches it, so a short document can
// ask for a quadratic walk); the overlapping-fields rule stops after
// ValidationBudget comparisons; the complexity analysis visits each node
// and each fragment once. With the defaults the worst documents found
// (TestWorstDocuments) cost at most about 20 ms of CPU each, so there is
// nothing left worth cancelling. Execution runs under the request's
// context, as before.
package gqlguard
