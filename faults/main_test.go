//go:build faults

package faults

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// knobs are the sizes and the goals of every scenario. The defaults are the full run;
// reduced() shrinks the sizes (never the goals) for CI. Every one can be set by a flag after
// -args, e.g. `-kills 30 -ratio-kill9 1.10`.
type knobs struct {
	seed int64

	kill9Files, kill9Kills   int
	kill9MinKiB, kill9MaxKiB int
	kill9Bandwidth           string
	kill9Ratio               float64

	cutsBigMiB, cuts, cutsSmall int
	cutsRatio                   float64
	cutsGap                     time.Duration

	alertAfter, outageDown, backWithin time.Duration
	outageMiB                          int

	diskMiB                   int
	sigtermMiB                int
	sigtermRatio              float64
	lockWithin, noticeWithin  time.Duration
	deliverWithin             time.Duration
	hostKeyMiB, twoDaemonsMiB int
}

func fullKnobs() knobs {
	return knobs{
		kill9Files: 40, kill9Kills: 20, kill9MinKiB: 2 << 10, kill9MaxKiB: 10 << 10, kill9Bandwidth: "4MiB", kill9Ratio: 1.05,
		cutsBigMiB: 500, cuts: 10, cutsSmall: 40, cutsRatio: 1.02, cutsGap: 2 * time.Second,
		alertAfter: 5 * time.Second, outageDown: 45 * time.Second, backWithin: 5 * time.Second, outageMiB: 16,
		diskMiB: 32, sigtermMiB: 48, sigtermRatio: 1.01,
		lockWithin: 5 * time.Second, noticeWithin: 30 * time.Second,
		deliverWithin: 10 * time.Minute, hostKeyMiB: 32, twoDaemonsMiB: 24,
	}
}

// reduced is the CI run: a few minutes in all on two loaded cores. Goals are unchanged.
func (k knobs) reduced() knobs {
	k.kill9Files, k.kill9Kills, k.kill9MinKiB, k.kill9MaxKiB, k.kill9Bandwidth = 12, 5, 512, 3<<10, "1MiB"
	k.cutsBigMiB, k.cuts, k.cutsSmall = 64, 3, 10
	k.alertAfter, k.outageDown, k.outageMiB = 2*time.Second, 15*time.Second, 6
	k.diskMiB, k.sigtermMiB, k.hostKeyMiB, k.twoDaemonsMiB = 8, 16, 16, 12
	k.noticeWithin = 20 * time.Second
	k.deliverWithin = 3 * time.Minute
	return k
}

var (
	cfg  knobs
	mode string
	bin  string // the hotdrop binary under test
)

// overrides are the flags, one per knob, whose zero value means "the mode's default".
type overrides struct {
	ints   map[string]*int
	floats map[string]*float64
	durs   map[string]*time.Duration
	strs   map[string]*string
}

func bindings(k *knobs) (map[string]*int, map[string]*float64, map[string]*time.Duration, map[string]*string) {
	return map[string]*int{
			"files": &k.kill9Files, "kills": &k.kill9Kills, "kill9-min-kib": &k.kill9MinKiB, "kill9-max-kib": &k.kill9MaxKiB,
			"big-mib": &k.cutsBigMiB, "cuts": &k.cuts, "small": &k.cutsSmall,
			"outage-mib": &k.outageMiB, "disk-mib": &k.diskMiB, "sigterm-mib": &k.sigtermMiB, "hostkey-mib": &k.hostKeyMiB, "twodaemons-mib": &k.twoDaemonsMiB,
		}, map[string]*float64{
			"ratio-kill9": &k.kill9Ratio, "ratio-cuts": &k.cutsRatio, "ratio-sigterm": &k.sigtermRatio,
		}, map[string]*time.Duration{
			"gap": &k.cutsGap, "alert-after": &k.alertAfter, "down": &k.outageDown, "back-within": &k.backWithin,
			"lock-within": &k.lockWithin, "notice-within": &k.noticeWithin, "deliver-within": &k.deliverWithin,
		}, map[string]*string{
			"kill9-bandwidth": &k.kill9Bandwidth,
		}
}

var ov = func() overrides {
	var zero knobs
	is, fs, ds, ss := bindings(&zero)
	o := overrides{map[string]*int{}, map[string]*float64{}, map[string]*time.Duration{}, map[string]*string{}}
	for n := range is {
		o.ints[n] = flag.Int(n, 0, "fault suite: override "+n+" (0 = the mode's default)")
	}
	for n := range fs {
		o.floats[n] = flag.Float64(n, 0, "fault suite goal: override "+n+" (0 = the default)")
	}
	for n := range ds {
		o.durs[n] = flag.Duration(n, 0, "fault suite: override "+n+" (0 = the mode's default)")
	}
	for n := range ss {
		o.strs[n] = flag.String(n, "", "fault suite: override "+n)
	}
	return o
}()

var seedFlag = flag.Int64("seed", 0, "fault suite: random seed (0 = from the clock; printed in every figure line)")

func applyOverrides(k *knobs) {
	is, fs, ds, ss := bindings(k)
	for n, p := range ov.ints {
		if *p != 0 {
			*is[n] = *p
		}
	}
	for n, p := range ov.floats {
		if *p != 0 {
			*fs[n] = *p
		}
	}
	for n, p := range ov.durs {
		if *p != 0 {
			*ds[n] = *p
		}
	}
	for n, p := range ov.strs {
		if *p != "" {
			*ss[n] = *p
		}
	}
}

var (
	figMu   sync.Mutex
	figures []string
)

// printFigure prints a scenario's FAULT line at once and keeps it for the summary at the end.
func printFigure(line string) {
	figMu.Lock()
	figures = append(figures, line)
	figMu.Unlock()
	fmt.Println(line)
}

func TestMain(m *testing.M) {
	flag.Parse()
	cfg, mode = fullKnobs(), "full"
	if testing.Short() || os.Getenv("HOTDROP_FAULTS") == "reduced" {
		cfg, mode = cfg.reduced(), "reduced"
	}
	applyOverrides(&cfg)
	cfg.seed = *seedFlag
	if cfg.seed == 0 {
		cfg.seed = time.Now().UnixNano() % 1_000_000
	}
	bin = os.Getenv("HOTDROP_BIN")
	built := ""
	if bin == "" {
		dir, err := os.MkdirTemp("", "hotdrop-faults-bin-*")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		bin = filepath.Join(dir, "hotdrop")
		build := exec.Command("go", "build", "-o", bin, "../cmd/hotdrop")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "faults: building the daemon: %v\n", err)
			os.Exit(1)
		}
		built = dir
	}
	fmt.Printf("faults: mode=%s seed=%d binary=%s\n", mode, cfg.seed, bin)
	start := time.Now()
	code := m.Run()
	fmt.Printf("\nfaults: %s run, seed %d, %s\n%s\n", mode, cfg.seed, time.Since(start).Round(time.Second), strings.Join(figures, "\n"))
	if out := os.Getenv("HOTDROP_FAULTS_OUT"); out != "" {
		_ = os.WriteFile(out, []byte(strings.Join(figures, "\n")+"\n"), 0o644)
	}
	if built != "" {
		os.RemoveAll(built)
	}
	os.Exit(code)
}
