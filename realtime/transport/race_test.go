//go:build race

package transport

// raceEnabled: the race detector changes memory and timing figures.
const raceEnabled = true
