// Package config reads hotdrop's configuration file and its requests files.
//
// It decodes the TOML described in SPEC.md's Config section, fills in the
// documented defaults (the one place they are written: components that fall
// back on one for a zero option use the Default* constants), resolves relative paths against the config file's
// folder and validates every value, so that the rest of the daemon can trust
// what it is handed. Every problem is reported with the file, line and column
// where it sits and what was expected, and all problems are reported at once
// (see ErrorList), because a sysadmin fixing a config wants the whole list,
// not one error per restart.
//
// It is not the place for behaviour: it does not create folders, open
// connections, expand globs beyond LoadRequests or know the built-in source
// type profiles. Those belong to the components the values are handed to;
// config only decodes, assembles and validates. CheckFiles is the one look at
// the file system: whether the files and folders the config names are there
// and usable by the user the service runs as, so that `check`, `run` and a
// reload refuse what the service could not use, with the key's position.
package config
