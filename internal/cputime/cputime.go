// Package cputime reads the CPU time this process has used, for benchmarks that report CPU
// a file or a GB beside wall time: on a shared build machine wall time measures the
// neighbours too.
package cputime
