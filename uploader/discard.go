package uploader

import (
	"context"
	"errors"
	"io/fs"
)

// Discard removes the partial upload of rel (slash-separated, relative to the URL folder)
// that a cancelled or transiently failed Upload left on the server for a resume. The caller
// calls it when it gives up on the file for good (its source was deleted mid-upload): nothing
// will ever resume that partial, and a partial left behind only confuses the ingest side.
// No partial there is not an error.
func (u *Uploader) Discard(ctx context.Context, rel string) error {
	if err := checkName(rel); err != nil {
		return &Error{Code: CodeRemoteError, Msg: "refusing remote path", Err: err}
	}
	return u.withTarget(ctx, func(t target) error {
		partial := t.partial(t.abs(rel))
		if err := t.remove(partial); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return destinationError("remove", partial, err)
		}
		return nil
	})
}
