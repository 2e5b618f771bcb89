package delivery

import "context"

// Old names kept only so that engine.go, being split into files by concern, compiles
// unchanged meanwhile. Each forwards to the name that says what it does; delete this file
// once engine.go calls those (Options.Classifier becomes Options.Matcher).

// Classifier is the old name of Matcher.
type Classifier = Matcher

// classify is the old name of asTransferError.
func classify(err error) *TransferError { return asTransferError(err) }

// classify is the old name of judge.
func (e *Engine) classify(ctx context.Context, fs *fileState, r *reqState) { e.judge(ctx, fs, r) }

// reclassify is the old name of rejudge.
func (e *Engine) reclassify(ctx context.Context) { e.rejudge(ctx) }
