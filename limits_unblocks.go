package main

import "time"

// The pending unblock records of the blocks this process started are
// bounded as the abuse trackers bound the blocks: a tracker keeps at most
// MaxBlocks per subject and, past it, lifts the block that ends first —
// the oldest, as every block lasts ABUSE_COOLDOWN. The limits mirror
// that: per subject, a queue of the unblock timers in the order their
// blocks started; past maxBlocks live ones, the oldest is stopped and its
// unblock record written at once, when the tracker lifts the block.
// Without it, a flood of addresses (an IPv6 range failing authentication)
// kept one timer per block for the whole cooldown, however many the
// tracker had let go.

// Subjects of blocks, the index of their queue.
const (
	subjectUser = iota
	subjectIP
)

func subjectOf(userID string) int {
	if userID != "" {
		return subjectUser
	}
	return subjectIP
}

// pendingUnblock is one block's unblock record to come.
type pendingUnblock struct {
	key, userID, ip string
	tm              *time.Timer
}

// unblockQueue holds a subject's pending unblocks, oldest first:
// q[head:]. An entry whose timer is no longer the one in the limits'
// unblocks map (fired, or replaced by a new block of its key) is stale and
// dropped when it reaches the front.
type unblockQueue struct {
	q    []pendingUnblock
	head int
	live int // the subject's keys in the unblocks map: its live entries
}

// push adds the timer of a new block; replaced: the key had one already,
// whose entry is now stale.
func (u *unblockQueue) push(p pendingUnblock, replaced bool) {
	u.q = append(u.q, p)
	if !replaced {
		u.live++
	}
}

// isLive reports whether p's timer is still the pending one of its key.
func isLive(p pendingUnblock, unblocks map[string]*time.Timer) bool {
	return unblocks[p.key] == p.tm
}

// fired accounts for a timer that fired (its key already removed from
// unblocks), and drops stale entries from the front.
func (u *unblockQueue) fired(unblocks map[string]*time.Timer) {
	u.live--
	for u.head < len(u.q) && !isLive(u.q[u.head], unblocks) {
		u.pop()
	}
}

// evict stops the oldest live timers while more than max are live,
// removing them from unblocks; their records are for the caller to write.
func (u *unblockQueue) evict(unblocks map[string]*time.Timer, max int) []pendingUnblock {
	var early []pendingUnblock
	for u.live > max && u.head < len(u.q) {
		p := u.pop()
		if !isLive(p, unblocks) {
			continue
		}
		p.tm.Stop()
		delete(unblocks, p.key)
		u.live--
		early = append(early, p)
	}
	return early
}

// pop removes the front entry, reusing the slice's front once half of it
// is consumed, so the queue's memory follows its length.
func (u *unblockQueue) pop() pendingUnblock {
	p := u.q[u.head]
	u.q[u.head] = pendingUnblock{}
	u.head++
	if u.head > len(u.q)/2 {
		n := copy(u.q, u.q[u.head:])
		clear(u.q[n:])
		u.q, u.head = u.q[:n], 0
	}
	return p
}
