package main

import (
	"errors"

	"github.com/hotdrop/hotdrop/config"
)

// shellWord quotes p for a shell when it needs it, so a command can be pasted as it is.
func shellWord(p string) string { return config.ShellQuote(p) }

// configProblems is every problem with the config as the account would meet it: files and
// folders it cannot use, secrets others can read. The error, when not nil, is a
// config.ErrorList (exit 78): the service could not start with it.
func configProblems(cfg *config.Config, reqs []config.Request, a config.Account) error {
	var errs config.ErrorList
	if errors.As(config.CheckFiles(cfg, reqs, a), &errs) {
		return errs
	}
	return nil
}
