package presencetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/presence"
)

// The cases Run runs, one per behaviour of the contract.

func testFirstConnection(t *testing.T, r *rig) {
	at := r.clock.Now()
	r.connect("ann", "c1")
	chs := r.want("first connection", "USER_ONLINE ann ONLINE")
	if !chs[0].State.LastSeen.Equal(at) {
		t.Errorf("lastSeen %v, want %v", chs[0].State.LastSeen, at)
	}
	if st := r.get("ann"); st.Status != presence.Online || !st.LastSeen.Equal(at) {
		t.Errorf("get: %+v", st)
	}
}

func testTabs(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.want("first tab", "USER_ONLINE ann ONLINE")
	r.connect("ann", "c2")
	r.connect("ann", "c3")
	r.want("more tabs")
	r.disconnect("ann", "c1")
	r.disconnect("ann", "c2")
	r.advance(2 * Grace)
	r.want("one tab still open after the others closed")
	if st := r.get("ann"); st.Status == presence.Offline {
		t.Fatalf("offline with a tab open: %+v", st)
	}
	r.disconnect("ann", "c3")
	r.advance(Grace)
	r.want("last tab closed", "USER_OFFLINE ann OFFLINE")
}

func testOfflineAfterGrace(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.take()
	r.advance(time.Second)
	closed := r.clock.Now()
	r.disconnect("ann", "c1")
	r.want("at close")
	r.advance(Grace - time.Millisecond)
	r.want("within the grace")
	if st := r.get("ann"); st.Status != presence.Online {
		t.Fatalf("within the grace: %+v, want ONLINE", st)
	}
	r.advance(time.Millisecond)
	chs := r.want("grace over", "USER_OFFLINE ann OFFLINE")
	if ls := chs[0].State.LastSeen; !ls.Before(closed) {
		t.Errorf("offline lastSeen %v: want the last activity, before the close at %v", ls, closed)
	}
	r.advance(10 * Grace)
	r.want("later")
}

func testReconnectWithinGrace(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.take()
	for i := range 5 { // a reload, a flaky network: closes and reopens within the grace
		r.disconnect("ann", fmt.Sprint("c", i+1))
		r.advance(Grace - time.Second)
		r.connect("ann", fmt.Sprint("c", i+2))
	}
	r.advance(3 * Grace)
	r.want("reconnects within the grace")
	if st := r.get("ann"); st.Status != presence.Online {
		t.Fatalf("%+v, want ONLINE", st)
	}
}

func testAway(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.take()
	r.advance(AwayIdle - time.Second)
	r.want("not idle long enough")
	r.advance(time.Second)
	r.want("idle", "USER_ACTIVITY ann AWAY")
	r.advance(AwayIdle)
	r.want("still idle")
	r.advance(time.Minute)
	r.touch("ann")
	chs := r.want("activity", "USER_ACTIVITY ann ONLINE")
	if !chs[0].State.LastSeen.Equal(r.clock.Now()) {
		t.Errorf("lastSeen %v, want now %v", chs[0].State.LastSeen, r.clock.Now())
	}
	r.touch("ann")
	r.want("more activity")
	r.advance(AwayIdle)
	r.want("idle again", "USER_ACTIVITY ann AWAY")
}

func testActivityPostponesAway(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.take()
	for range 10 {
		r.advance(AwayIdle / 2)
		r.touch("ann")
	}
	r.want("active every half idle period")
	r.advance(AwayIdle)
	r.want("idle", "USER_ACTIVITY ann AWAY")
}

func testUpdateCoalesced(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.take()
	r.advance(Interval)
	var last presence.State
	for i := range 100 {
		last = r.update("ann", presence.Update{CurrentPage: str(fmt.Sprint("/page/", i)), ActiveTask: str("t1")})
		r.clock.Advance(Interval / 400)
	}
	if last.CurrentPage != "/page/99" || last.ActiveTask != "t1" || last.Status != presence.Online {
		t.Fatalf("update returned %+v", last)
	}
	chs := r.want("burst", "USER_ACTIVITY ann ONLINE")
	if chs[0].State.CurrentPage != "/page/0" {
		t.Errorf("first change carries %q, want /page/0 (the leading edge goes out at once)", chs[0].State.CurrentPage)
	}
	r.advance(Interval)
	chs = r.want("after the interval", "USER_ACTIVITY ann ONLINE")
	if chs[0].State.CurrentPage != "/page/99" {
		t.Errorf("last change carries %q, want /page/99 (the last state always goes out)", chs[0].State.CurrentPage)
	}
	r.advance(10 * Interval)
	r.want("quiet")
	// The same state again is no news.
	r.update("ann", presence.Update{CurrentPage: str("/page/99")})
	r.advance(Interval)
	r.want("no change")
	// Clearing with "".
	st := r.update("ann", presence.Update{ActiveTask: str("")})
	if st.ActiveTask != "" || st.CurrentPage != "/page/99" {
		t.Errorf("after clearing the task: %+v", st)
	}
	r.want("cleared", "USER_ACTIVITY ann ONLINE")
}

func testUpdateRefusals(t *testing.T, r *rig) {
	if _, err := r.p.Update(ctx(), "ann", presence.Update{CurrentPage: str("/x")}); err != presence.ErrOffline {
		t.Errorf("update while never connected: %v, want ErrOffline", err)
	}
	r.connect("ann", "c1")
	r.take()
	for _, s := range []presence.Status{presence.Offline, "BUSY"} {
		if _, err := r.p.Update(ctx(), "ann", presence.Update{Status: status(s), CurrentPage: str("/x")}); err != presence.ErrStatus {
			t.Errorf("status %q: %v, want ErrStatus", s, err)
		}
	}
	if st := r.get("ann"); st.CurrentPage != "" {
		t.Errorf("a refused update changed the state: %+v", st)
	}
	r.disconnect("ann", "c1")
	r.advance(Grace)
	r.take()
	if _, err := r.p.Update(ctx(), "ann", presence.Update{CurrentPage: str("/x")}); err != presence.ErrOffline {
		t.Errorf("update after going offline: %v, want ErrOffline", err)
	}
	r.want("refusals")
}

func testManualAway(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.take()
	r.advance(Interval)
	if st := r.update("ann", presence.Update{Status: status(presence.Away)}); st.Status != presence.Away {
		t.Fatalf("set AWAY: %+v", st)
	}
	r.want("set away", "USER_ACTIVITY ann AWAY")
	r.advance(Interval)
	r.touch("ann")
	r.advance(2 * AwayIdle)
	r.touch("ann")
	r.advance(Interval)
	r.want("activity does not end a chosen AWAY")
	if st := r.get("ann"); st.Status != presence.Away {
		t.Fatalf("%+v, want AWAY", st)
	}
	r.update("ann", presence.Update{Status: status(presence.Online)})
	r.want("set online", "USER_ACTIVITY ann ONLINE")
	// A new session starts ONLINE.
	r.update("ann", presence.Update{Status: status(presence.Away)})
	r.advance(Interval)
	r.take()
	r.disconnect("ann", "c1")
	r.advance(Grace)
	r.connect("ann", "c2")
	r.want("offline, then back", "USER_OFFLINE ann OFFLINE", "USER_ONLINE ann ONLINE")
}

func testOfflineClears(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.update("ann", presence.Update{CurrentPage: str("/a"), ActiveTask: str("t"), ActiveProject: str("p")})
	r.want("online with a page (coalesced behind USER_ONLINE)", "USER_ONLINE ann ONLINE")
	r.disconnect("ann", "c1")
	r.advance(Grace)
	chs := r.want("offline: the pending page change is dropped", "USER_OFFLINE ann OFFLINE")
	if st := chs[0].State; st.CurrentPage != "" || st.ActiveTask != "" || st.ActiveProject != "" {
		t.Errorf("offline state keeps what they were doing: %+v", st)
	}
	if st := r.get("ann"); st.Status != presence.Offline || st.CurrentPage != "" || st.LastSeen.IsZero() {
		t.Errorf("get after offline: %+v", st)
	}
	r.connect("ann", "c2")
	chs = r.want("back", "USER_ONLINE ann ONLINE")
	if chs[0].State.CurrentPage != "" {
		t.Errorf("a new session shows the old page: %+v", chs[0].State)
	}
}

func testGet(t *testing.T, r *rig) {
	r.connect("ann", "c1")
	r.update("ann", presence.Update{CurrentPage: str("/board")})
	sts, err := r.p.Get(ctx(), "zed", "ann", "zed")
	if err != nil {
		t.Fatal(err)
	}
	want := []presence.State{
		{UserID: "zed", Status: presence.Offline},
		{UserID: "ann", Status: presence.Online, LastSeen: r.clock.Now(), CurrentPage: "/board"},
		{UserID: "zed", Status: presence.Offline},
	}
	if len(sts) != len(want) {
		t.Fatalf("got %+v", sts)
	}
	for i := range want {
		if sts[i].UserID != want[i].UserID || sts[i].Status != want[i].Status || !sts[i].LastSeen.Equal(want[i].LastSeen) || sts[i].CurrentPage != want[i].CurrentPage {
			t.Errorf("state %d: %+v, want %+v", i, sts[i], want[i])
		}
	}
	if sts, err := r.p.Get(ctx()); err != nil || len(sts) != 0 {
		t.Errorf("get of nobody: %v %v", sts, err)
	}
	// Activity of a user without a connection moves their lastSeen only.
	r.touch("zed")
	if st := r.get("zed"); st.Status != presence.Offline || !st.LastSeen.Equal(r.clock.Now()) {
		t.Errorf("touched offline user: %+v", st)
	}
	r.want("get", "USER_ONLINE ann ONLINE")
}

func testIdempotent(t *testing.T, r *rig) {
	r.disconnect("ann", "nope")
	r.connect("ann", "c1")
	r.connect("ann", "c1")
	r.want("connect twice", "USER_ONLINE ann ONLINE")
	r.disconnect("ann", "c1")
	r.disconnect("ann", "c1")
	r.disconnect("ann", "c2")
	r.advance(Grace)
	r.want("disconnect twice", "USER_OFFLINE ann OFFLINE")
	r.disconnect("ann", "c1")
	r.advance(Grace)
	r.want("after")
}

func testUsersIndependent(t *testing.T, r *rig) {
	r.connect("ann", "a1")
	r.connect("bob", "b1")
	r.want("both", "USER_ONLINE ann ONLINE", "USER_ONLINE bob ONLINE")
	r.advance(AwayIdle / 2)
	r.touch("bob")
	r.disconnect("ann", "a1")
	r.advance(Grace)
	r.want("ann leaves", "USER_OFFLINE ann OFFLINE")
	r.advance(AwayIdle)
	r.want("bob idle", "USER_ACTIVITY bob AWAY")
	if st := r.get("bob"); st.Status != presence.Away {
		t.Errorf("bob %+v", st)
	}
}

// testConcurrent runs tabs of many users opening, working and closing at
// once (for the race detector), then checks every user ends OFFLINE with
// exactly one USER_ONLINE before one USER_OFFLINE.
func testConcurrent(t *testing.T, r *rig) {
	const users, tabs = 16, 4
	var wg sync.WaitGroup
	for u := range users {
		for c := range tabs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, conn := fmt.Sprint("u", u), fmt.Sprint("c", c)
				_ = r.p.Connect(ctx(), id, conn)
				for i := range 20 {
					_ = r.p.Touch(ctx(), id)
					_, _ = r.p.Update(ctx(), id, presence.Update{CurrentPage: str(fmt.Sprint(i))})
				}
				_ = r.p.Disconnect(ctx(), id, conn)
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			_ = r.sw.Sweep(ctx())
		}
	}()
	wg.Wait()
	r.advance(Grace)
	r.advance(Interval)
	perUser := map[string][]presence.Kind{}
	for _, ch := range r.take() {
		if ch.Kind != presence.KindActivity {
			perUser[ch.State.UserID] = append(perUser[ch.State.UserID], ch.Kind)
		}
	}
	for u := range users {
		id := fmt.Sprint("u", u)
		if got := perUser[id]; !slices.Equal(got, []presence.Kind{presence.KindOnline, presence.KindOffline}) {
			t.Errorf("%s: online/offline changes %v, want [online offline]", id, got)
		}
		if st := r.get(id); st.Status != presence.Offline {
			t.Errorf("%s: %+v, want OFFLINE", id, st)
		}
	}
}
