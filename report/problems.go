package report

import (
	"encoding/json"
	"strings"
	"time"
)

// Problem is a config or requests-file error the running daemon refused at a reload: it
// goes on with the last good files, and the dashboard and `hotdrop status` show the problem
// until a reload succeeds, so a broken file is not left for the log alone to tell.
type Problem struct {
	Message string    `json:"message"` // one error a line, each with its file:line:column
	Since   time.Time `json:"since"`
}

// SetProblem records the error of the last reload (nil: it succeeded) and tells live
// subscribers with a "problems" frame.
func (h *Hub) SetProblem(err error) {
	var ps []Problem
	if err != nil {
		ps = []Problem{{Message: strings.TrimSpace(err.Error()), Since: time.Now().UTC()}}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(ps) == 1 && len(h.problems) == 1 && h.problems[0].Message == ps[0].Message {
		return // the same problem: keep since when
	}
	h.problems = ps
	data, _ := json.Marshal(struct {
		Problems []Problem `json:"problems"`
	}{ps})
	h.broadcast(frame{event: "problems", data: data})
}

// Problems is what SetProblem recorded last.
func (h *Hub) Problems() []Problem {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Problem(nil), h.problems...)
}
