package lifecycle

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// HistoryRequest selects recorded events. Empty AgentID means all agents.
type HistoryRequest struct {
	AgentID string
	// Limit: 0 means 100, at most 1000.
	Limit int
	Type  TransitionType
	// Start is inclusive, End exclusive; zero means unbounded.
	Start, End time.Time
	// PageToken is the NextPageToken of the previous page, with the same filters.
	PageToken string
}

// HistoryPage is one page of events in chronological (sequence) order.
type HistoryPage struct {
	Events        []Event
	NextPageToken string
}

// History returns recorded events, oldest first. CodeNotFound for an unknown agent,
// CodeOutOfRange when the page token points before the oldest retained event.
func (m *Manager) History(ctx context.Context, req HistoryRequest) (HistoryPage, error) {
	if req.AgentID != "" {
		if err := checkID("agent_id", req.AgentID); err != nil {
			return HistoryPage{}, err
		}
	}
	if err := checkType("transition_type", req.Type); err != nil {
		return HistoryPage{}, err
	}
	limit, err := checkPageSize("limit", req.Limit)
	if err != nil {
		return HistoryPage{}, err
	}
	if !req.Start.IsZero() && !req.End.IsZero() && req.End.Before(req.Start) {
		return HistoryPage{}, invalid("end_time %s is before start_time %s", req.End.Format(time.RFC3339Nano), req.Start.Format(time.RFC3339Nano))
	}
	key := historyFilterKey(req)
	from := uint64(0)
	if tok, err := decodeToken(req.PageToken, historyToken, key); err != nil {
		return HistoryPage{}, err
	} else if tok != "" {
		if from, err = strconv.ParseUint(tok, 10, 64); err != nil {
			return HistoryPage{}, invalid("page_token is malformed")
		}
	}
	evs, err := m.store.ReadEvents(ctx, EventFilter{
		FromSequence: from, AgentID: req.AgentID, Type: req.Type, Start: req.Start, End: req.End, Limit: limit + 1,
	})
	if err != nil {
		return HistoryPage{}, fmt.Errorf("read history: %w", err)
	}
	// An empty page of an agent that does not exist is CodeNotFound. A deleted agent's
	// history stays readable until retention removes it.
	if req.AgentID != "" && len(evs) == 0 {
		if _, err := m.store.GetAgent(ctx, req.AgentID); err != nil {
			return HistoryPage{}, err
		}
	}
	var page HistoryPage
	if len(evs) > limit {
		page.NextPageToken = encodeToken(historyToken, key, strconv.FormatUint(evs[limit].Sequence, 10))
		evs = evs[:limit]
	}
	page.Events = evs
	return page, nil
}

const (
	historyToken = "h1"
	agentsToken  = "a1"
)

// Page tokens are opaque to callers: kind, a hash of the filters (so a token is not reused
// with other filters by mistake) and a position.
func encodeToken(kind string, filterKey uint32, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "." + strconv.FormatUint(uint64(filterKey), 36) + "." + pos))
}

func decodeToken(tok, kind string, filterKey uint32) (string, error) {
	if tok == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	parts := strings.SplitN(string(raw), ".", 3)
	if err != nil || len(parts) != 3 || parts[0] != kind || parts[2] == "" {
		return "", invalid("page_token is malformed")
	}
	if parts[1] != strconv.FormatUint(uint64(filterKey), 36) {
		return "", invalid("page_token was issued for other filters; repeat the first request's filters or start without a token")
	}
	return parts[2], nil
}

func historyFilterKey(r HistoryRequest) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%d|%d|%d", r.AgentID, r.Type, r.Start.UnixNano(), r.End.UnixNano())
	return h.Sum32()
}

func listFilterKey(r ListAgentsRequest) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, r.States, "|", r.Labels) // fmt prints maps sorted by key
	return h.Sum32()
}
