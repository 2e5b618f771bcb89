// Command delayproxy runs internal/netdelay standalone: a TCP proxy that adds
// a round trip to every connection, for shell benches (bench/run.sh --rtt).
//
//	go run ./bench/delayproxy -rtt 100ms -to 127.0.0.1:2222
//
// It prints the address it listens on as its first line, then runs until
// SIGINT or SIGTERM, and prints what it carried as its last line:
//
//	up=BYTES down=BYTES accepted=N cuts=N
//
// up counts client → target bytes written to the target, all connections
// together; with -cut-after, every connection is dropped once up reaches it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/hotdrop/hotdrop/internal/netdelay"
)

func main() {
	var opt netdelay.Options
	var rate, queue, cut string
	to := flag.String("to", "", "target `HOST:PORT` (required)")
	flag.StringVar(&opt.Listen, "listen", "127.0.0.1:0", "address to listen on")
	flag.DurationVar(&opt.RTT, "rtt", 0, "round trip to add; each direction gets half")
	flag.StringVar(&rate, "rate", "0", "cap per direction, all connections together, in `BYTES` per second (K, M, G suffixes: powers of 1024); 0 = none")
	flag.StringVar(&queue, "queue", "0", "queue per direction of each connection in `BYTES`; 0 = 64M, or rate × RTT with a rate")
	flag.StringVar(&cut, "cut-after", "0", "drop every connection once this many `BYTES` went to the target; 0 = never")
	flag.Parse()
	if *to == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: delayproxy -to HOST:PORT [-rtt 100ms] [-rate 10M] [-cut-after BYTES] [-listen ADDR]")
		os.Exit(64)
	}
	var err error
	for _, f := range []struct {
		name, s string
		set     func(int64)
	}{
		{"-rate", rate, func(n int64) { opt.Rate = n }},
		{"-queue", queue, func(n int64) { opt.QueueBytes = int(n) }},
		{"-cut-after", cut, func(n int64) { opt.CutAfter = n }},
	} {
		var n int64
		if n, err = parseBytes(f.s); err != nil {
			fmt.Fprintf(os.Stderr, "delayproxy: %s %q: %v\n", f.name, f.s, err)
			os.Exit(64)
		}
		f.set(n)
	}

	p, err := netdelay.Listen(*to, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "delayproxy:", err)
		os.Exit(1)
	}
	fmt.Println(p.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	_ = p.Close()
	fmt.Printf("up=%d down=%d accepted=%d cuts=%d\n", p.Up(), p.Down(), p.Accepted(), p.Cuts())
}

// parseBytes reads 1234, 64K, 10M or 2G (powers of 1024).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	switch u := strings.ToUpper(s); {
	case strings.HasSuffix(u, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(u, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(u, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a whole number of bytes ≥ 0, with an optional K, M or G")
	}
	return n * mult, nil
}
