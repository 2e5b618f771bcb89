package delivery

import "context"

// ForgetRoot drops the engine's open watch.root, so that the next operation opens it by its
// path again: for a watch.root that was deleted and made again, whose old descriptor points
// at a folder no one can reach. An upload in flight keeps reading through the old one.
func (e *Engine) ForgetRoot(ctx context.Context) error {
	return e.do(ctx, func() { e.root = nil })
}
