package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// floor measures the physical floor of a fan-out: the same WebSocket-sized
// frame written to n loopback TCP sockets with one write(2) each, per
// round, by a process that does nothing else. The sockets' other ends are
// read by a child process (tpload itself, in floor-reader mode), so the
// writer's CPU — getrusage of this process — is the writes alone,
// including the kernel's loopback delivery and the reader wake-ups it
// causes, exactly what a server pays per delivered frame.
func floor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	conns := fs.Int("conns", 1000, "sockets")
	writes := fs.Int("writes", 60, "rounds: writes per socket")
	size := fs.Int("size", 200, "frame size in bytes (a small event as the server frames it)")
	gap := fs.Duration("gap", 300*time.Millisecond, "pause between rounds (as fanout's -gap)")
	writers := fs.Int("writers", 1, "goroutines sharing the writes of a round")
	_ = fs.Parse(args)
	switch {
	case *conns < 1 || *writes < 1 || *writers < 1:
		return errors.New("-conns, -writes and -writers must be positive")
	case *size < 8 || *size > 1<<16:
		return errors.New("-size must be within 8..65536")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.CommandContext(ctx, self, "floor-reader",
		"-addr", ln.Addr().String(), "-conns", strconv.Itoa(*conns), "-frames", strconv.Itoa(*writes), "-size", strconv.Itoa(*size))
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	waited := false
	defer func() {
		if !waited {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	}()

	socks := make([]net.Conn, 0, *conns)
	defer func() {
		for _, c := range socks {
			_ = c.Close()
		}
	}()
	// A child that fails to dial them all exits: give up after a minute.
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Minute))
	for len(socks) < *conns {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accepting socket %d: %w", len(socks), err)
		}
		socks = append(socks, c)
	}

	frame := floorFrame(*size)
	rounds := make([]time.Duration, 0, *writes)
	var part sync.WaitGroup
	cpu0 := rusage(syscall.RUSAGE_SELF)
	var writeErr error
	var emu sync.Mutex
	for k := 0; k < *writes; k++ {
		if k > 0 {
			time.Sleep(*gap)
		}
		t0 := time.Now()
		per := (len(socks) + *writers - 1) / *writers
		for w := 0; w < *writers; w++ {
			lo, hi := w*per, min((w+1)*per, len(socks))
			if lo >= hi {
				break
			}
			part.Add(1)
			go func(socks []net.Conn) {
				defer part.Done()
				for _, c := range socks {
					if _, err := c.Write(frame); err != nil {
						emu.Lock()
						writeErr = err
						emu.Unlock()
						return
					}
				}
			}(socks[lo:hi])
		}
		part.Wait()
		rounds = append(rounds, time.Since(t0))
		if writeErr != nil {
			return writeErr
		}
	}
	cpu := rusage(syscall.RUSAGE_SELF) - cpu0

	// The child reports when every socket has read everything.
	report, _ := io.ReadAll(io.LimitReader(out, 4096))
	waited = true
	if err := child.Wait(); err != nil {
		return fmt.Errorf("reader process: %w", err)
	}
	n := float64(*conns) * float64(*writes)
	fmt.Printf("floor: %d sockets × %d rounds of one %d-byte write(2) each = %.0f writes (%d writer goroutines, %v between rounds)\n",
		*conns, *writes, *size, n, *writers, *gap)
	fmt.Printf("  writer CPU per write: %.2f µs (%.3f s CPU, getrusage of the writing process)\n", cpu.Seconds()/n*1e6, cpu.Seconds())
	fmt.Printf("  wall per round:       %s\n", summary(rounds))
	fmt.Printf("  reader process:       %s", strings.TrimSpace(string(report))+"\n")
	return nil
}

// floorFrame is a server WebSocket text frame of size bytes in all: an
// unmasked header and a graphql-transport-ws next message padded to fit
// (the reader counts bytes; it does not parse frames).
func floorFrame(size int) []byte {
	hdr := []byte{0x81, 0}
	plen := size - 2
	if plen > 125 {
		plen = size - 4
		hdr = binary.BigEndian.AppendUint16(append(hdr[:1], 126), uint16(plen))
	} else {
		hdr[1] = byte(plen)
	}
	msg := `{"id":"1","type":"next","payload":{"data":{"systemUpdates":{"type":"SYSTEM_UPDATE","message":"`
	end := `"}}}}`
	pad := plen - len(msg) - len(end)
	if pad < 0 {
		return append(hdr, strings.Repeat("x", plen)...)
	}
	return append(hdr, msg+strings.Repeat("m", pad)+end...)
}

// floorReader is the child of floor: it dials conns sockets and reads
// frames×size bytes from each, then prints its own CPU use and exits.
func floorReader(args []string) error {
	fs := flag.NewFlagSet("floor-reader", flag.ExitOnError)
	addr := fs.String("addr", "", "the writer's listener")
	conns := fs.Int("conns", 0, "sockets")
	frames := fs.Int("frames", 0, "frames to read from each socket")
	size := fs.Int("size", 0, "frame size")
	_ = fs.Parse(args)
	if *addr == "" || *conns < 1 || *frames < 1 || *size < 1 {
		return errors.New("floor-reader is started by tpload floor")
	}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for i := 0; i < *conns; i++ {
		c, err := net.DialTimeout("tcp", *addr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("dial %d: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			// Every read is bounded: a writer that stops costs 2 minutes.
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
			r := bufio.NewReaderSize(c, 4096)
			if _, err := io.CopyN(io.Discard, r, int64(*frames)*int64(*size)); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	cpu0 := rusage(syscall.RUSAGE_SELF)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	cpu := rusage(syscall.RUSAGE_SELF) - cpu0
	fmt.Printf("CPU per frame read %.2f µs (%.3f s)\n", cpu.Seconds()/float64(*conns)/float64(*frames)*1e6, cpu.Seconds())
	return nil
}

// rusage is the user plus system CPU time of who.
func rusage(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
