// Package report tells people and programs what hotdrop is doing: today the
// .hotdrop-status.json file in every drop folder and in the File Bin; later the event outbox,
// the HTTP API and the dashboard. It reads the delivery state and never transfers anything.
package report
