package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

type reportResponse struct {
	ID        int64            `json:"id"`
	Day       string           `json:"day"`
	Version   int              `json:"version"`
	Data      store.ReportData `json:"data"`
	Links     reportLinks      `json:"links"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

type reportLinks struct {
	PDF string `json:"pdf"`
	CSV string `json:"csv"`
}

func toReport(r store.Report) reportResponse {
	base := fmt.Sprintf("/api/reports/%d", r.ID)
	return reportResponse{ID: r.ID, Day: r.Day.Format(time.DateOnly), Version: r.Version, Data: r.Data,
		Links: reportLinks{PDF: base + "/pdf", CSV: base + "/csv"}, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func (s *Server) listReports(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	items, total, err := store.ListReports(ctx, s.db, principal(c).TenantID, store.Page{Number: page, Size: perPage})
	if err != nil {
		return err
	}
	return c.JSON(newList(items, total, page, perPage, toReport))
}

func (s *Server) loadReport(ctx context.Context, c *fiber.Ctx) (store.Report, error) {
	id, err := idParam(c, "id", "report")
	if err != nil {
		return store.Report{}, err
	}
	r, err := store.GetReport(ctx, s.db, principal(c).TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Report{}, errNotFound("report")
	}
	return r, err
}

func (s *Server) getReport(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	r, err := s.loadReport(ctx, c)
	if err != nil {
		return err
	}
	return c.JSON(toReport(r))
}

func (s *Server) getReportPDF(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	r, err := s.loadReport(ctx, c)
	if err != nil {
		return err
	}
	return s.sendDocument(ctx, c, r.TenantID, store.DocReport, r.ID, r.Version, "report-"+r.Day.Format(time.DateOnly))
}

func (s *Server) getReportCSV(c *fiber.Ctx) error {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	r, err := s.loadReport(ctx, c)
	if err != nil {
		return err
	}
	rc, err := s.blobs.Open(ctx, r.CSVKey)
	if err != nil {
		return fmt.Errorf("open CSV of report %d: %w", r.ID, err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read CSV of report %d: %w", r.ID, err)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="report-`+r.Day.Format(time.DateOnly)+`.csv"`)
	return c.Send(body)
}
