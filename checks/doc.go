// Package checks looks inside files before hotdrop sends them, to catch the wrong file: a
// media file's streams as ffprobe reports them, a timed-text file's frame rate, language and
// cue timing, and an IMF package against its own asset map and packing lists. It returns
// typed findings; comparing them with what a request asks for is done by pure functions
// here too.
//
// It is a leaf: it knows nothing of requests, the watcher or the uploader, and holds nothing
// back. The delivery engine decides what a finding means (a hold), through a port it owns.
// Every file is opened by the caller or beneath a folder without following a link; ffprobe
// runs as a child without a shell, with a clean environment, bounded in time and output, and
// reading only the descriptor it is handed (on Linux) with the file protocol alone.
package checks
