package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/server"
)

// httpClient is a plain HTTP client for the server, with --tls-* applied.
func (g *globals) httpClient() (*http.Client, error) {
	if !strings.HasPrefix(g.server, "https://") {
		return http.DefaultClient, nil
	}
	tc, err := g.tls.client()
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

// callJSON calls a unary RPC over the Connect protocol in JSON, for the answers the
// client library does not surface (a hook registration's warnings, whether a hook's
// worker is connected). procedure is "/package.Service/Method".
func (g *globals) callJSON(ctx context.Context, procedure string, req, res proto.Message) error {
	body, err := protojson.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(g.server, "/")+procedure, bytes.NewReader(body))
	if err != nil {
		return usageError{fmt.Errorf("--server %q: %w", g.server, err)}
	}
	hreq.Header.Set("Content-Type", "application/json")
	if g.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+g.token)
	}
	hc, err := g.httpClient()
	if err != nil {
		return err
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "cannot reach " + g.server + " (is `hms-lifecycle serve` running?)", Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, server.MaxRequestBytes))
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "reading the answer of " + g.server, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code, Message string }
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return fmt.Errorf("%s answered %s: %s", g.server, resp.Status, data)
		}
		var code connect.Code
		if code.UnmarshalText([]byte(e.Code)) != nil {
			return fmt.Errorf("%s answered %s: %s", g.server, e.Code, e.Message)
		}
		return &lifecycle.Error{Code: server.DomainCode(code), Message: e.Message}
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, res)
}
