package elastic

import (
	"context"
	"fmt"
)

// SearchesRunning returns how many search phases run on index now.
func (e *Engine) SearchesRunning(ctx context.Context, index string) (int, error) {
	var st struct {
		All struct {
			Total struct {
				Search struct {
					QueryCurrent  int `json:"query_current"`
					FetchCurrent  int `json:"fetch_current"`
					ScrollCurrent int `json:"scroll_current"`
				} `json:"search"`
			} `json:"total"`
		} `json:"_all"`
	}
	if err := e.Do(ctx, "GET", "/"+index+"/_stats/search", nil, &st); err != nil {
		return 0, err
	}
	s := st.All.Total.Search
	return s.QueryCurrent + s.FetchCurrent, nil
}

// ScanVersions calls fn with the ids and versions of every document of target, a scroll
// page at a time, in no particular order.
func (e *Engine) ScanVersions(ctx context.Context, target string, fn func([]IDVersion) error) error {
	body := obj{"size": 5000, "_source": false, "version": true, "sort": []any{"_doc"}, "query": obj{"match_all": obj{}}}
	var page scrollPage
	if err := e.Do(ctx, "POST", "/"+target+"/_search?scroll=2m", body, &page); err != nil {
		return fmt.Errorf("scan %s: %w", target, err)
	}
	defer func() {
		if page.ScrollID != "" {
			_ = e.Do(context.WithoutCancel(ctx), "DELETE", "/_search/scroll", obj{"scroll_id": []string{page.ScrollID}}, nil)
		}
	}()
	for len(page.Hits.Hits) > 0 {
		batch := make([]IDVersion, len(page.Hits.Hits))
		for i, h := range page.Hits.Hits {
			batch[i] = IDVersion{ID: h.ID, Version: h.Version}
		}
		if err := fn(batch); err != nil {
			return err
		}
		id := page.ScrollID
		page = scrollPage{}
		if err := e.Do(ctx, "POST", "/_search/scroll", obj{"scroll": "2m", "scroll_id": id}, &page); err != nil {
			page.ScrollID = id
			return fmt.Errorf("scan %s: %w", target, err)
		}
	}
	return nil
}

type scrollPage struct {
	ScrollID string `json:"_scroll_id"`
	Hits     struct {
		Hits []struct {
			ID      string `json:"_id"`
			Version int64  `json:"_version"`
		} `json:"hits"`
	} `json:"hits"`
}

// VersionsOf returns the versions target holds for ids (absent: no document).
func (e *Engine) VersionsOf(ctx context.Context, target string, ids []string) (map[string]int64, error) {
	var ans struct {
		Docs []struct {
			ID      string `json:"_id"`
			Found   bool   `json:"found"`
			Version int64  `json:"_version"`
		} `json:"docs"`
	}
	body := obj{"ids": ids}
	if err := e.Do(ctx, "POST", "/"+target+"/_mget?_source=false", body, &ans); err != nil {
		return nil, fmt.Errorf("versions in %s: %w", target, err)
	}
	out := make(map[string]int64, len(ids))
	for _, d := range ans.Docs {
		if d.Found {
			out[d.ID] = d.Version
		}
	}
	return out, nil
}
