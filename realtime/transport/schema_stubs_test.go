package transport

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/graph/model"
)

// The issue-6 schema's fields, which the transport tests do not exercise:
// the harness's resolvers refuse them.

func (s subRes) UserActivity(context.Context, string) (<-chan *model.ActivityEvent, error) {
	return nil, errs.E(errs.BadUserInput, "not served by the transport harness")
}

func (s subRes) TeamUpdates(context.Context, string, *string) (<-chan *model.TeamEvent, error) {
	return nil, errs.E(errs.BadUserInput, "not served by the transport harness")
}

func (userRes) Presence(context.Context, *model.User) (*model.Presence, error) { return nil, nil }
