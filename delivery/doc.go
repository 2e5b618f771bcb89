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
//
// One goroutine, Run's loop, owns all state; uploads and control calls talk to it through
// messages, and readers get the views it publishes. Slow I/O is off the loop: the journal
// writer writes each batch's records, intents and events (journal_writer.go), and status
// files are written by the Reporter's own goroutine. Where each concern lives:
//
//	engine.go     the loop: Options, New, Run, batching, do (control calls run on the loop)
//	state.go      what is known of each request and file
//	requests.go   installing requests: drop folders, the File Bin, reloads
//	intake.go     a watcher event becomes a tracked file (Locate: which folder holds it)
//	judge.go      naming rules, sidecars and profiles judge a ready file (the Matcher port)
//	policy.go     hold policy: RequestHold, deriveHold, countFiles, requestState
//	sequence.go   frame sequences: gaps, suspect frames, milestones, summaries
//	inspect.go    content checks (the Inspector port)
//	schedule.go   starting uploads within destination.concurrency
//	retry.go      transient failures, backoff, reachability alerts
//	outcome.go    what an upload's end means for its file
//	finish.go     after delivery: destination.after, the manifest
//	recover.go    restart: the journal, renames a crash left unknown
//	journal.go    records, events and rename intents handed over once per batch
//	journal_writer.go  writes them in order on its own goroutine; the loop never waits
//	index.go      files by request, and re-deriving each request once per batch
//	views.go      what status files, the API and the CLI see
//	why.go        the one-line "why" of every state
//	control.go    retry, deliver, retry --replace
package delivery
