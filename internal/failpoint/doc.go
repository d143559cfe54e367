// Package failpoint lets a test stop or slow the server at a named point of
// its code, to prove what survives a crash there. It is test-only: the
// crash test builds the binary with the build tag failpoints and sets
// TASKPULSE_FAILPOINTS="after-commit=kill" to SIGKILL the process between a
// change's commit and its relay (kill -9, as an operator's or the kernel's),
// then checks the next relay delivers the change's events, once.
//
// Without the tag, Hit is an empty function the compiler inlines away: a
// production binary reads no environment and has no way to be stopped
// this way.
//
// With the tag, TASKPULSE_FAILPOINTS is a comma-separated list of
// name=action, action one of
//
//	kill        SIGKILL the own process at once (no deferred code runs)
//	sleep:<d>   sleep for the Go duration d (e.g. sleep:2s), then go on
//
// A malformed value stops the process at the first Hit with exit code 2
// and a message on stderr: a crash test whose failpoint silently did
// nothing would pass without testing anything.
package failpoint

// EnvVar names the environment variable read by builds with the failpoints
// tag.
const EnvVar = "TASKPULSE_FAILPOINTS"
