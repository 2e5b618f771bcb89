// Package uploader moves one settled local file to the destination atomically:
// it writes a temporary ".NAME.partial" beside the final name, hashes the file
// in the same read pass, checks the size on the server, lets the caller journal
// the rename intent, then renames into place.
//
// It speaks SFTP over SSH (host keys always checked against known_hosts) and
// file:// for a local or mounted folder. Every failure is returned as an
// *Error whose Code is one of the SPEC's failure reasons and whose Transient
// flag tells the caller whether to retry; the uploader itself never retries.
//
// It is not a scheduler: it does not know about requests, journals, bandwidth
// windows or retry back-off. Those belong to the caller, which reaches this
// package only through its own small interface.
package uploader
