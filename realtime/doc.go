// Package realtime owns event delivery inside one taskpulse instance and
// across instances: the Event envelope, its cursor and its log entry
// (logentry.go: what the service appends to the database's log and the
// feed package turns back into events on every instance), the Hub (rooms →
// local subscriptions, fan-out), and the Registry of live connections
// (which tells an observer — presence — of each one opened and closed).
//
// The hub knows no transport and no GraphQL. A transport hands the hub a
// Sink (where frames go, never blocking) and an Encoder (how an event becomes
// bytes for one query shape); the hub creates one Payload per event and
// encoder, so a payload is encoded once however many subscribers share it.
//
// Ordering: the database numbers every event in one log (package feed
// delivers it to every instance, gapless; Hub.Lost reports a gap past the
// retention); each hub applies events strictly in that order, membership changes (Control)
// included, so a member added at seq N receives everything after N and a
// member removed at seq N receives nothing after N. Changes of rights travel
// the same way: a Demote ends the subscriptions a user's admin rights
// allowed, a Disconnect closes a disabled user's connections (through the
// Registry), on every instance.
//
// Anchoring and resuming: a subscription starts at a log position read
// together with its state, and the Resumer registers it there without a
// lock, catching it up if the hub has already gone past that position; a
// resumed subscription first replays what it missed from the durable log
// (paced by the client: PacedSink), then goes live, each event once.
package realtime
