// Package report tells people and programs what hotdrop is doing: the .hotdrop-status.json
// file in every drop folder and in the File Bin (StatusFiles); the events journal and its live
// fan-out (Hub, the Engine's EventSink and a Reporter); the durable outbox that delivers
// events to the webhook and the tracker at least once (Sender); the tracker as the source of
// requests (Tracker); and the HTTP server with the dashboard, the JSON API, Server-Sent
// Events, /metrics and /healthz (Server, Metrics).
//
// It reads the delivery state and asks the Engine for retries and deliveries through the
// small Control interface; it never transfers a file.
package report
