package plugin

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hms-lifecycle/lifecycle"
)

// Event is one recorded plugin transition.
type Event struct {
	Sequence uint64
	EventID  uuid.UUID
	Ref
	From, To State
	// Operation is the specification's name of the transition ("activate"), or "discover"
	// for the registration.
	Operation   string
	InitiatedBy string
	Reason      string
	// Metadata carries an automatic decision's inputs, an activation's endpoint and
	// generation, a validation's manifest digest, a deprecation's replacement.
	Metadata map[string]string
	Time     time.Time
	Revision int64
	// Bookmark marks a progress marker carrying only Sequence.
	Bookmark bool
}

func eventOf(ev *lifecycle.Event) Event {
	if ev.Bookmark {
		return Event{Sequence: ev.Sequence, Bookmark: true}
	}
	return Event{Sequence: ev.Sequence, EventID: ev.ID, Ref: refOf(ev.AgentID), From: State(ev.From), To: State(ev.To),
		Operation: operation(ev), InitiatedBy: ev.InitiatedBy, Reason: ev.Reason, Metadata: ev.Metadata, Time: ev.Time,
		Revision: ev.Revision}
}

// HistoryRequest selects plugin events. An empty ID selects every plugin; an ID without a
// Version every version of it.
type HistoryRequest struct {
	Ref
	// Limit: 0 means 100, at most 1000.
	Limit     int
	PageToken string
}

// HistoryPage is one page of events in sequence order.
type HistoryPage struct {
	Events        []Event
	NextPageToken string
}

// History returns plugin events, chronologically, in pages.
func (m *Manager) History(ctx context.Context, req HistoryRequest) (HistoryPage, error) {
	limit := req.Limit
	switch {
	case limit < 0 || limit > lifecycle.MaxPageSize:
		return HistoryPage{}, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "limit is %d, allowed 0 (default %d) to %d", limit, lifecycle.DefaultPageSize, lifecycle.MaxPageSize)
	case limit == 0:
		limit = lifecycle.DefaultPageSize
	}
	if req.Version != "" && req.ID == "" {
		return HistoryPage{}, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "a version needs an id")
	}
	from := uint64(0)
	if req.PageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(req.PageToken)
		seq, perr := strconv.ParseUint(strings.TrimPrefix(string(b), "p1:"), 10, 64)
		if err != nil || perr != nil || !strings.HasPrefix(string(b), "p1:") {
			return HistoryPage{}, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "page_token is not a token this server issued")
		}
		from = seq
	}
	f := lifecycle.EventFilter{FromSequence: from, Limit: lifecycle.MaxPageSize}
	if req.Version != "" {
		f.AgentID = req.key()
	}
	var page HistoryPage
	for {
		evs, err := m.store.ReadEvents(ctx, f)
		if err != nil {
			return HistoryPage{}, err
		}
		for i := range evs {
			ev := eventOf(&evs[i])
			if req.ID != "" && ev.ID != req.ID {
				continue
			}
			if len(page.Events) == limit {
				page.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte("p1:" + strconv.FormatUint(ev.Sequence, 10)))
				return page, nil
			}
			page.Events = append(page.Events, ev)
		}
		if len(evs) < f.Limit {
			return page, nil
		}
		f.FromSequence = evs[len(evs)-1].Sequence + 1
	}
}

// WatchRequest selects the events of a watch; see HistoryRequest for Ref.
type WatchRequest struct {
	Ref
	States []State
	// FromSequence replays stored events from there first; 0 means only new ones.
	FromSequence     uint64
	BookmarkInterval time.Duration
}

// EventStream is a stream of plugin events, in sequence order.
type EventStream interface {
	// Next blocks until the next event; an ended stream returns a *lifecycle.Error whose
	// ResumeSequence is where to watch again from.
	Next(ctx context.Context) (Event, error)
	Close() error
}

// Watch streams plugin events with the agents' guarantees: resume from any retained
// sequence with no gap and no duplicate, bookmarks, lagging watchers cut off with the
// sequence to resume from.
func (m *Manager) Watch(ctx context.Context, req WatchRequest) (EventStream, error) {
	if req.Version != "" && req.ID == "" {
		return nil, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "a version needs an id")
	}
	wr := lifecycle.WatchRequest{FromSequence: req.FromSequence, BookmarkInterval: req.BookmarkInterval}
	if req.Version != "" {
		wr.AgentID = req.key()
	}
	for _, s := range req.States {
		wr.States = append(wr.States, lifecycle.State(s))
	}
	w, err := m.engine.Watch(ctx, wr)
	if err != nil {
		return nil, err
	}
	return &stream{w: w, id: req.ID}, nil
}

type stream struct {
	w  lifecycle.EventStream
	id string // every version of this plugin
}

func (s *stream) Next(ctx context.Context) (Event, error) {
	for {
		ev, err := s.w.Next(ctx)
		if err != nil {
			return Event{}, err
		}
		if out := eventOf(&ev); ev.Bookmark || s.id == "" || out.ID == s.id {
			return out, nil
		}
	}
}

func (s *stream) Close() error { return s.w.Close() }
