// Package delivery is hotdrop's orchestration: the Source Request model, the per-file and
// per-request delivery state machine, and the loop that turns the watcher's "this file is
// ready" into uploads and status reports.
//
// It owns every decision about a file — which request it belongs to, whether it may be sent,
// when its request is complete, what a failure means — and none of the mechanics. It declares
// the small interfaces it consumes (Uploader, Store, Reporter, Clock) and never imports the
// concrete packages behind them; cmd/hotdrop wires those in.
//
// Data flows one way: watcher events in, upload jobs out, views of the state to the Reporter.
package delivery
