package ratelimit_test

import (
	"sync"
	"testing"

	"github.com/taskpulse/taskpulse/ratelimit"
)

func TestCounter(t *testing.T) {
	c := ratelimit.NewCounter(2)
	r1, ok1 := c.Acquire("a")
	r2, ok2 := c.Acquire("a")
	_, ok3 := c.Acquire("a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire a ×3 with max 2: %v %v %v", ok1, ok2, ok3)
	}
	if _, ok := c.Acquire("b"); !ok {
		t.Fatal("b refused: keys are not isolated")
	}
	r1()
	r1() // a second release gives nothing back
	if c.Count("a") != 1 {
		t.Fatalf("Count(a) = %d after one release (twice), want 1", c.Count("a"))
	}
	if _, ok := c.Acquire("a"); !ok {
		t.Fatal("a refused after a release")
	}
	r2()
	if c.Keys() != 2 {
		t.Fatalf("Keys = %d, want 2 (a and b held)", c.Keys())
	}
}

func TestCounterForgetsReleasedKeys(t *testing.T) {
	c := ratelimit.NewCounter(1000)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				rel, ok := c.Acquire(string(rune('a'+w)) + string(rune(i)))
				if !ok {
					t.Error("refused under max")
					return
				}
				rel()
			}
		}()
	}
	wg.Wait()
	if c.Keys() != 0 {
		t.Fatalf("Keys = %d after every holder released, want 0", c.Keys())
	}
}
