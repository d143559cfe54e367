package resolvers

import "github.com/taskpulse/taskpulse/service"

// pageArgs maps a list's paging arguments to the service's, which owns
// their defaults and bounds.
func pageArgs(first *int32, after *string) service.PageArgs {
	return service.PageArgs{First: intPtr(first), After: after}
}

// intPtr widens a GraphQL Int (int32 in gqlgen); nil stays nil.
func intPtr(n *int32) *int {
	if n == nil {
		return nil
	}
	v := int(*n)
	return &v
}
