// Package postgres owns taskpulse's PostgreSQL adapter of store.Store: the
// connection pool (pgx v5's pgxpool), the embedded schema migrations and the
// SQL behind every Store method. store/storetest is its contract, as it is
// store/sqlite's; the schema is store/sqlite's, ported (TIMESTAMPTZ at the
// store's microsecond precision, BOOLEAN, the same keys, indexes and
// cascades).
//
// # Concurrency
//
// SQLite gets its guarantees from a single writer. Here many connections,
// and later many instances, write at once, so each guarantee comes from a
// statement, a transaction or a row lock in the database, none from a lock
// in this process.
//
// A write that fits one statement is one statement. UpdateTask is UPDATE …
// SET version = version + 1 … RETURNING: concurrent updates of a task queue
// on its row lock and each starts from the row the previous one committed,
// so each gets its own version. UpdateUser keeps the later revocation with
// GREATEST; UpdateProject, DeleteTask and MarkNotificationRead are single
// statements too. Creates insert with ON CONFLICT (id) DO NOTHING: a taken
// id is a row count of zero (BadUserInput), never a failed statement.
//
// A write of several statements runs in one READ COMMITTED transaction (set
// explicitly, whatever the server's default) and first locks the row its
// decision depends on; each statement after the lock sees what the previous
// holder committed:
//
//   - A team's members and invitations change only under the team's row
//     lock (SELECT … FOR NO KEY UPDATE, which leaves foreign-key checks
//     free): invite, accept, add and remove take turns per team, so of 8
//     concurrent accepts one consumes the invitation, a member is never also
//     invited, and the creator leaves last even while an invitee accepts.
//   - A parent a write depends on is pinned with FOR KEY SHARE, the lock a
//     foreign key takes: a project cannot be deleted between the check and
//     the insert of its task or member. DeleteProject locks the project FOR
//     UPDATE, so it waits for those inserts, deletes them too, and returns
//     the tasks as it deleted them (DELETE … RETURNING).
//   - SetSettingIfAbsent is INSERT … ON CONFLICT DO NOTHING, which waits for
//     a concurrent insert of the key to commit, then a SELECT: a new
//     statement, a new snapshot, which sees the winner.
//
// Listings read their parent and its children in one REPEATABLE READ, READ
// ONLY transaction: one snapshot, as SQLite's read transactions give.
//
// SERIALIZABLE with retries would also be correct, but every conflict here
// is on a row we can name; locking it makes the wait explicit, costs nothing
// when there is no contention, and retries nothing, where SERIALIZABLE aborts
// transactions under exactly the contention the contract creates (8 writers
// on one task) and keeps predicate locks on every read. No method waits on
// two locks that another takes in the other order (a team or project before
// its rows; pins conflict only with deletes), so these transactions do not
// deadlock; units of work, which combine methods, follow the lock order
// below.
//
// # Units of work and the log
//
// Every method is written once, on db, against querier: what *pgxpool.Pool
// and pgx.Tx have in common. Store is db on the pool, where each method runs
// alone (in its own transaction when it has several statements). Update
// runs fn on db over one READ COMMITTED pgx.Tx (the unit of work's Tx):
// write and read then run their statements directly in it, so
// authorization reads, several changes and log entries commit or roll back
// together without rewriting a query, and the locking argument above holds
// inside it as it does per method. A method that fails inside a unit may
// have done part of its work or aborted the transaction: fn returns the
// error and Update rolls back.
//
// The log's order is decided by the row of log_head. If fn appended n > 0
// entries, Update's last statement before COMMIT is one UPDATE log_head
// SET seq = seq + n … RETURNING that also inserts the entries with the n
// seqs it skipped over. The UPDATE takes the row's lock and keeps it until
// the transaction ends. A second unit reaching its UPDATE meanwhile waits
// for that lock, that is for the first to commit (or roll back), and then,
// READ COMMITTED, re-reads the row as committed and numbers after it. So a
// unit holds seqs above N only once the unit holding N has committed and
// is visible: seq order is commit order, across connections and instances,
// and no reader that sees N+1 can miss N. A rolled back unit's UPDATE is
// rolled back with it, so seqs have no gaps (a SEQUENCE would leave gaps
// and number in call order, not commit order). The lock is held from that
// last statement to the commit only, and it is every unit's last lock: the
// holder waits for nothing another unit holds, so it cannot be part of a
// deadlock. A unit without entries never touches log_head: reads and
// event-less writes do not queue on it. Trimming deletes a prefix of
// event_log and never touches log_head, so it does not wait for writers.
//
// # Decisions inside a unit of work
//
// READ COMMITTED alone would let a unit's check be stale by the time it
// commits (a member removed between the check and the change). So, inside a
// unit only, the reads a service decides on lock what they read, until the
// unit ends:
//
//   - IsProjectMember pins the project (FOR KEY SHARE) and locks the
//     membership row FOR SHARE. A concurrent RemoveProjectMember's DELETE
//     waits for the unit to commit, so the removal numbers its entries
//     after the unit's; or the check, reaching a row whose removal is in
//     progress, waits for it and sees the row gone. A missing row locks
//     nothing: "not a member" needs no lock to stay true enough for a
//     refusal.
//   - IsTeamMember takes the team's row lock (FOR NO KEY UPDATE), the one
//     every change of a team's members and invitations takes before it
//     touches their rows. A FOR SHARE lock on the membership row would be
//     taken before that team lock by a unit that checks and then changes
//     the team, the reverse of the changes' order: a creator removing u
//     (holding the team, waiting for u's row) and u leaving (holding u's
//     row, waiting for the team) would deadlock. The units that check team
//     membership are the team's membership changes, which take the team's
//     lock anyway, so taking it first costs them nothing.
//   - LockTask pins the task's project, then locks the task FOR NO KEY
//     UPDATE (the lock UpdateTask's UPDATE takes): a second unit's
//     LockTask of the task waits, then reads what the first committed
//     (concurrent reassignments see each other's assignee).
//
// The lock order is: a project or team row; membership rows; task rows;
// log_head, always last (see above). Units that take their locks in that
// order, and at most one exclusive lock of a kind (one task, one removed
// membership), cannot wait for each other in a cycle: each waits only for
// a lock of a later kind than every lock it holds. DeleteProject breaks the
// order within itself (tasks, then memberships by cascade) but its first
// lock is the project FOR UPDATE, which conflicts with every pin: a unit
// that pinned the project keeps DeleteProject out until it commits, and a
// unit that comes after waits at its pin, before it holds anything under
// the project. A unit may lock a task or a membership without a pin
// (UpdateTask, DeleteTask, RemoveProjectMember) and stay in order as long
// as it takes nothing under that project afterwards but log_head. Hence the
// rule for the service: decide first (checks, LockTask), change after. A
// unit that breaks it is still correct, since PostgreSQL breaks the
// deadlock and the victim runs again (below), but it waits deadlock_timeout
// (1 s by default) first.
//
// Two units that lock the same row shared and then both want it
// exclusively deadlock whatever the order: an owner removing u while u
// leaves, when both first check u's membership; two DeleteProjects of a
// project after membership checks. PostgreSQL detects the cycle (after
// deadlock_timeout, 1 s by default) and aborts one, and Update runs it
// again (below), and the retry sees the other's outcome. A service avoids
// the wait by not checking the membership it removes (RemoveProjectMember
// reports whether there was one).
//
// Update runs fn again, on a new transaction and with the entries of the
// failed attempt dropped, when the database aborted it with
// deadlock_detected (40P01) or serialization_failure (40001): up to 5
// attempts in all, after a short random pause, as the Store contract
// allows (fn has no effect outside its transaction). A method alone on the
// pool that runs several statements (DeleteProject, say) is retried the
// same way, so whichever side PostgreSQL picks as the victim goes on.
//
// # Read snapshots
//
// Read runs on one REPEATABLE READ, READ ONLY transaction whose snapshot is
// taken by its first statement, the read of log_head, and sees head P.
// Every unit with an entry up to P is in that snapshot, and no unit with an
// entry above P:
//
//   - The version of log_head with seq P was written by the unit U that
//     numbered P, so U committed and is visible. Each unit with entries
//     before U's moved log_head before U did, and U's UPDATE could only
//     read their value once they released the row lock. PostgreSQL makes a
//     transaction visible to new snapshots (ProcArrayEndTransaction) before
//     it releases its locks, so each of them was visible before U even took
//     the lock, hence before our snapshot, which came after U's commit.
//     Visibility for new snapshots never goes back, so they are all in it.
//   - A unit with an entry above P moved log_head after U (from P or
//     later). Were it visible, the snapshot's log_head would be its version
//     or a later one, not P.
//
// A transaction's changes become visible together, so "a unit is visible"
// means all its rows are, its memberships, tasks and entries alike. Units
// without entries never touch log_head and are in the snapshot or not, as
// they committed before or after it.
package postgres
